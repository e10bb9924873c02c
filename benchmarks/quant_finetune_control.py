"""Control for QAT (issue 8): fine-tune the fp32 (BN-folded) model with QAT's own loop, steps and data.

    python benchmarks/quant_finetune_control.py wiflow-tiny 1024 2e-5,2e-4

Arguments: zoo model, training windows per epoch, comma-separated learning rates. Prints the
validation MPJPE history per lr (``edgepose.quantization.qat.finetune`` with no fake-quant wrappers),
as JSON on the last line. The numbers in docs/quantization.md came from this script.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

from edgepose.exporting.fold import fold_batchnorm
from edgepose.exporting import ExportRequest, load_context
from edgepose.quantization.qat import QATModel, finetune


def main() -> None:
    name, max_windows, lrs = sys.argv[1], int(sys.argv[2]), [float(v) for v in sys.argv[3].split(",")]
    work = Path(tempfile.mkdtemp(prefix="edgepose-ft-"))
    ctx = load_context(ExportRequest(checkpoint=name, out=work, precision="int8", log=print), work)
    folded = fold_batchnorm(ctx.model)
    out = {}
    for lr in lrs:
        model = copy.deepcopy(folded).eval()
        out[str(lr)] = finetune(QATModel(model, model, {}), ctx.dataset, ctx.spec, epochs=2, lr=lr,
                                max_windows=max_windows, log=print)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
