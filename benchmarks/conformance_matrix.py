"""Run the whole conformance matrix and write ``benchmarks/results/matrix.md`` (+ ``matrix.json``).

Every model × input shape × precision/calibrator/target on the ``small`` data size, then every data
size on ``wiflow-tiny`` with the int8 exports most likely to break on small or odd data. Each cell:
export through the public API (parity gate included), load in ONNX Runtime, and per group bench +
report. Usage::

    python benchmarks/conformance_matrix.py [--quick] [--out benchmarks/results]
    python benchmarks/conformance_matrix.py --rerun-failed   # after a fix: rerun the ✗ cells only
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
import time
from pathlib import Path

from edgepose.conformance import PRECISIONS, SHAPES, SIZES, run_group, to_markdown
from edgepose.runtime.cpu import cpu_summary

MODELS = ("wiflow-tiny", "wiflow-quarter", "wiflow-half", "wiflow-full")
SIZE_PRECISIONS = ("fp32", "ptq-minmax-ort-cpu", "ptq-entropy-ort-cpu", "ptq-percentile-tensorrt", "qat-ort-cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--quick", action="store_true", help="tiny model only")
    ap.add_argument("--rerun-failed", action="store_true",
                    help="rerun the failed cells of OUT/matrix.json with the current code and update both files")
    args = ap.parse_args()
    if args.rerun_failed:
        rerun_failed(args.out)
        return
    t0 = time.perf_counter()
    cells = []
    with tempfile.TemporaryDirectory(prefix="edgepose-matrix-") as tmp:
        work = Path(tmp)
        for model in MODELS[:1] if args.quick else MODELS:
            for shape in SHAPES:
                cells += run_group(model, shape, "small", list(PRECISIONS), work / f"{model}-{shape}-small")
                print(to_markdown(cells[-len(PRECISIONS):]), flush=True)
        for size in SIZES:
            if size == "small":
                continue
            for shape in ("wiflow", "mmfi"):
                group = run_group("wiflow-tiny", shape, size, list(SIZE_PRECISIONS), work / f"tiny-{shape}-{size}")
                cells += group
                print(to_markdown(group), flush=True)
    passed = sum(bool(c.ok) for c in cells)
    header = (f"# Conformance matrix\n\n{passed} of {len(cells)} cells pass. Made by `python "
              f"benchmarks/conformance_matrix.py` in {(time.perf_counter() - t0) / 60:.1f} min on "
              f"{cpu_summary()['cpu_model']} ({platform.machine()}).\n\nEach cell writes its dataset with plain "
              "numpy / scipy (not the synthetic generator), makes an untrained checkpoint (BatchNorm statistics "
              "re-estimated on the data so the output depends on the input), exports through "
              "`edgepose.exporting.export` (its parity gate included), loads the artifact in ONNX Runtime and checks "
              "finite, input-dependent outputs; each (model, input, data) group is then benched (batch 1 and 3, "
              "in-process) and reported. Data sizes: "
              + "; ".join(f"`{s.name}` {s.files} files × {s.windows_per_file} windows, calib-count {s.calib_count}"
                          + (", all training windows but one corrupt" if s.all_but_one_train_corrupt else "")
                          for s in SIZES.values()) + ".\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.md").write_text(header + to_markdown(cells))
    (args.out / "matrix.json").write_text(json.dumps(
        [{"model": c.model, "input": c.shape, "data": c.size, "precision": c.precision, "ok": c.ok,
          "reason": c.reason, "seconds": round(c.seconds, 2)} for c in cells], indent=1))
    print(f"{passed}/{len(cells)} cells pass")


def rerun_failed(out: Path) -> None:
    """Rerun every ✗ cell of ``out/matrix.json`` (one group per cell) and rewrite matrix.md/.json,
    keeping the first run's reason beside the new result."""
    from edgepose.conformance import Cell

    rows = json.loads((out / "matrix.json").read_text())
    with tempfile.TemporaryDirectory(prefix="edgepose-matrix-") as tmp:
        for i, row in enumerate(rows):
            if row["ok"]:
                continue
            (cell,) = run_group(row["model"], row["input"], row["data"], [row["precision"]], Path(tmp) / str(i))
            row.update(ok=cell.ok, seconds=round(cell.seconds, 2),
                       reason=(cell.reason or f"rerun ✓ after a fix; first run: {row['reason']}"))
            print(f"{row['model']} {row['input']} {row['data']} {row['precision']}: {cell.mark}", flush=True)
    cells = [Cell(r["model"], r["input"], r["data"], r["precision"], r["ok"], r["reason"], r["seconds"]) for r in rows]
    md = (out / "matrix.md").read_text()
    header = md[: md.index("| model | input |")]
    passed = sum(bool(c.ok) for c in cells)
    header = re.sub(r"\d+ of \d+ cells pass\.", f"{passed} of {len(cells)} cells pass (cells that failed were rerun "
                    "with `--rerun-failed` after their fix; the reason column keeps the first run's error).", header,
                    count=1)
    (out / "matrix.md").write_text(header + to_markdown(cells))
    (out / "matrix.json").write_text(json.dumps(rows, indent=1))
    print(f"{passed}/{len(cells)} cells pass")


if __name__ == "__main__":
    main()
