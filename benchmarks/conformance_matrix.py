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
import tempfile
from pathlib import Path

from edgepose.conformance import PRECISIONS, SHAPES, SIZES, run_group, to_markdown

MODELS = ("wiflow-tiny", "wiflow-quarter", "wiflow-half", "wiflow-full")
SIZE_PRECISIONS = ("fp32", "ptq-minmax-ort-cpu", "ptq-entropy-ort-cpu", "ptq-percentile-tensorrt", "qat-ort-cpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--quick", action="store_true", help="tiny model only")
    ap.add_argument("--rerun-failed", action="store_true",
                    help="rerun the failed cells of OUT/matrix.json with the current code and update both files")
    ap.add_argument("--add-precision", metavar="NAME", choices=list(PRECISIONS),
                    help="run one registered precision for every (model, input, data) group of OUT/matrix.json that "
                         "lacks it, and update both files")
    args = ap.parse_args()
    if args.rerun_failed:
        rerun_failed(args.out)
        return
    if args.add_precision:
        add_precision(args.out, args.add_precision)
        return
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
    rows = [{"model": c.model, "input": c.shape, "data": c.size, "precision": c.precision, "ok": c.ok,
             "reason": c.reason, "seconds": round(c.seconds, 2)} for c in cells]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.json").write_text(json.dumps(rows, indent=1))
    (args.out / "matrix.md").write_text(matrix_markdown(rows))
    passed = sum(bool(c.ok) for c in cells)
    print(f"{passed}/{len(cells)} cells pass")


def rerun_failed(out: Path) -> None:
    """Rerun every ✗ cell of ``out/matrix.json`` (one group per cell) and rewrite matrix.md/.json,
    keeping the first run's reason beside the new result."""
    rows = json.loads((out / "matrix.json").read_text())
    with tempfile.TemporaryDirectory(prefix="edgepose-matrix-") as tmp:
        for i, row in enumerate(rows):
            if row["ok"]:
                continue
            (cell,) = run_group(row["model"], row["input"], row["data"], [row["precision"]], Path(tmp) / str(i))
            row.update(ok=cell.ok, seconds=round(cell.seconds, 2),
                       reason=(cell.reason or f"rerun ✓ after a fix; first run: {row['reason']}"))
            print(f"{row['model']} {row['input']} {row['data']} {row['precision']}: {cell.mark}", flush=True)
    (out / "matrix.json").write_text(json.dumps(rows, indent=1))
    (out / "matrix.md").write_text(matrix_markdown(rows))
    print(f"{sum(bool(r['ok']) for r in rows)}/{len(rows)} cells pass")


def add_precision(out: Path, name: str) -> None:
    """Run precision ``name`` for every group of ``out/matrix.json`` that lacks it (a precision registered
    after the table was made), appending its cells in table order."""
    rows = json.loads((out / "matrix.json").read_text())
    groups = list(dict.fromkeys((r["model"], r["input"], r["data"]) for r in rows))
    have = {(r["model"], r["input"], r["data"]) for r in rows if r["precision"] == name}
    order = list(PRECISIONS)
    with tempfile.TemporaryDirectory(prefix="edgepose-matrix-") as tmp:
        for i, (model, shape, size) in enumerate(groups):
            if (model, shape, size) in have:
                continue
            (cell,) = run_group(model, shape, size, [name], Path(tmp) / str(i))
            new = {"model": model, "input": shape, "data": size, "precision": name, "ok": cell.ok,
                   "reason": cell.reason, "seconds": round(cell.seconds, 2)}
            at = max(k for k, r in enumerate(rows) if (r["model"], r["input"], r["data"]) == (model, shape, size)) + 1
            rows.insert(at, new)
            rows[: at + 1] = sorted(rows[: at + 1], key=lambda r: (groups.index((r["model"], r["input"], r["data"])),
                                                                      order.index(r["precision"])))
            print(f"{model} {shape} {size} {name}: {cell.mark}", flush=True)
            (out / "matrix.json").write_text(json.dumps(rows, indent=1))  # progress survives an interruption
    (out / "matrix.json").write_text(json.dumps(rows, indent=1))
    (out / "matrix.md").write_text(matrix_markdown(rows))
    print(f"{sum(bool(r['ok']) for r in rows)}/{len(rows)} cells pass")


def matrix_markdown(rows: list[dict]) -> str:
    """``matrix.md`` from the cells of ``matrix.json`` (what ``rebuild_reports.py`` regenerates)."""
    from edgepose.conformance import Cell

    cells = [Cell(r["model"], r["input"], r["data"], r["precision"], r["ok"], r["reason"], r["seconds"]) for r in rows]
    passed = sum(bool(c.ok) for c in cells)
    rerun = sum("first run:" in (c.reason or "") for c in cells)
    covered = {c.precision for c in cells}
    absent = [p for p in PRECISIONS if p not in covered]
    header = (f"# Conformance matrix\n\n{passed} of {len(cells)} cells pass"
              + (f" ({rerun} failed first and were rerun with `--rerun-failed` after their fix; the reason column "
                 "keeps the first run's error)" if rerun else "")
              + f". The cells took {sum(c.seconds for c in cells) / 60:.1f} min in all. Made by `python "
              "benchmarks/conformance_matrix.py`"
              + (f"; precisions registered in `edgepose.conformance.PRECISIONS` but not in this table: "
                 f"{', '.join(f'`{p}`' for p in absent)} (`--add-precision NAME` runs one for every group)"
                 if absent else "") + ".\n\n"
              "Each cell writes its dataset with plain numpy / scipy (not the synthetic generator), makes an untrained "
              "checkpoint (BatchNorm statistics re-estimated on the data so the output depends on the input), exports "
              "through `edgepose.exporting.export` (its parity gate included), loads the artifact in ONNX Runtime and "
              "checks finite, input-dependent outputs; each (model, input, data) group is then benched (batch 1 and 3, "
              "in-process) and reported. Data sizes: "
              + "; ".join(f"`{s.name}` {s.files} files × {s.windows_per_file} windows, calib-count {s.calib_count}"
                          + (", all training windows but one corrupt" if s.all_but_one_train_corrupt else "")
                          for s in SIZES.values()) + ".\n\n")
    return header + to_markdown(cells)


if __name__ == "__main__":
    main()
