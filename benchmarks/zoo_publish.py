"""Copy trained runs into the zoo (``models/``) and regenerate the zoo table in models/README.md.

For each run folder: ``best.safetensors`` + ``best.json`` become ``models/<model>.safetensors`` +
``models/<model>.json`` (the card's ``weights_file`` renamed; the weights hash is unchanged).
Then the docs are re-rendered (``benchmarks/render_docs.py``): the ``<!--table zoo-->`` block of
models/README.md comes from every card in models/ (the headline table and one learning curve per
model, from the card's per-epoch history), and every figure quoted from a card follows.

Usage:
    python3 benchmarks/zoo_publish.py /tmp/zoo-runs/wiflow-half [/tmp/zoo-runs/wiflow-tiny …]
    python3 benchmarks/zoo_publish.py            # only rewrite the table
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from edgepose.io import sha256_file, write_json
from edgepose.zoo import list_pretrained, models_dir

MAX_BYTES = 10 * 1024 * 1024


def publish(run: Path, root: Path) -> Path:
    card = json.loads((run / "best.json").read_text())
    weights = run / "best.safetensors"
    if sha256_file(weights) != card["weights_sha256"]:
        sys.exit(f"{weights}: does not match its card")
    if weights.stat().st_size >= MAX_BYTES:
        sys.exit(f"{weights}: {weights.stat().st_size} bytes is over the zoo's 10 MB limit")
    name = card["model"]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, root / f"{name}.safetensors")
    card["weights_file"] = f"{name}.safetensors"
    card["weights_bytes"] = weights.stat().st_size
    write_json(root / f"{name}.json", card)
    return root / f"{name}.safetensors"


def _pct(scores: dict, t: str = "0.2") -> str:
    return f"{100 * scores['pck'][t]:.2f}"


def table(root: Path) -> str:
    entries = sorted(list_pretrained(root), key=lambda e: e.params)
    lines = ["| model | params | size | test PCK@10 | @20 | @30 | @40 | @50 | MPJPE | wrists+ankles @20 | "
             "mean pose @20 | val @20 | train-subset @20 | epochs (best/run) | train time | recipe |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        c = e.card
        m = c["metrics"]
        t = m["test"]["clean"]
        tr = c.get("training", {})
        ends = t.get("end_effectors_pck", {})
        lines.append(
            f"| {e.name} | {e.params:,} | {c.get('weights_bytes', e.path.stat().st_size) / 1e6:.2f} MB | "
            f"{_pct(t, '0.1')} | **{_pct(t)}** | {_pct(t, '0.3')} | {_pct(t, '0.4')} | {_pct(t, '0.5')} | "
            f"{t['mpjpe']:.4f} | {100 * ends.get('0.2', float('nan')):.2f} | {_pct(m['test']['mean_pose'])} | "
            f"{_pct(m['val'])} | {_pct(m['train_subset'])} | {c.get('epoch')}/{tr.get('epochs_run', '?')} | "
            f"{tr.get('train_seconds', float('nan')) / 60:.1f} min | {c.get('recipe', '?')} |")
    n_test = {e.card.get("split", {}).get("files", {}).get("test") for e in entries}
    n_test_txt = f"{n_test.pop()} held-out recordings" if len(n_test) == 1 else "held-out recordings"
    out = [f"PCK in %, clean test split of the default synthetic set ({n_test_txt}); MPJPE in label "
           "units (pixel/1000). Size: the safetensors file. Train time: the sum of epoch times (the cards record "
           "the CPU and torch threads, not whether other jobs shared the machine; see the notes below the "
           "learning curves).", "", *lines, ""]
    for e in entries:
        h = e.card.get("history", [])
        hw = e.card.get("training", {}).get("hardware", {})
        out += [f"**{e.name}** learning curve ({len(h)} epochs, {hw.get('cpu_model', '?')}, "
                f"{hw.get('torch_threads', '?')} torch thread(s)):", "",
                "| epoch | lr | train loss | val MPJPE | val PCK@20 | s |", "|---|---|---|---|---|---|"]
        for r in h:
            out.append(f"| {r['epoch']} | {r['lr']:.2e} | {r['train_loss']:.4f} | {r['val_mpjpe']:.4f} | "
                       f"{100 * r['val_pck20']:.2f} | {r['seconds']:.0f} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--root", type=Path, default=None, help="zoo folder (default: the repository's models/)")
    args = ap.parse_args()
    root = args.root or models_dir()
    for run in args.runs:
        print("published", publish(run, root))
    import render_docs

    problems = render_docs.run()
    for line in problems:
        print(line, file=sys.stderr)
    print("docs re-rendered" if not problems else "docs re-rendered, with the problems above")


if __name__ == "__main__":
    main()
