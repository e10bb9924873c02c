"""Replay the first epochs of a zoo checkpoint's training run and compare them with its card's history.

A full retraining of the 60-epoch ``wiflow-half`` takes about two hours on a 2-core box; its first
epochs take minutes. The trainer's run is deterministic by construction (seeded initialisation,
per-epoch permutations from ``(seed, epoch)``, CPU kernels, the card's thread count), so replaying
its first ``N`` epochs from the card's own training config on the regenerated default dataset must
give the card's per-epoch history (training loss, validation MPJPE and PCK@20, learning rate)
float for float. Where it does not, the script reports the first epoch and field that differ and by
how much: on another CPU family that is a finding about the kernels' float sums, not a failure of
the recipe (the card records the trainer's CPU flags, this file records the replay's).

The replay runs the trainer in a child process and stops it once its resumable state
(``last.json``, written atomically after every epoch) holds ``N`` epochs; the cosine schedule is
the card's, over all its epochs, so epoch ``k`` of the replay trains with epoch ``k``'s rate.

Usage:
    python3 benchmarks/zoo_retrain_prefix.py wiflow-half --epochs 3 --work runs/retrain-prefix \\
        --out benchmarks/results/zoo-retrain-prefix-amd-epyc-avx512.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from edgepose import zoo
from edgepose.data import open_dataset
from edgepose.io import write_json
from edgepose.runtime.cpu import cpu_summary
from edgepose.training import read_card

#: the per-epoch history fields compared (``seconds`` is a wall time, never compared)
FIELDS = ("train_loss", "val_mpjpe", "val_pck20", "lr")

_CHILD = """
import json, sys
from edgepose.training.config import TrainConfig
from edgepose.training.trainer import fit
cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
fit(cfg, sys.argv[2], sys.argv[3], progress=False, recipe=sys.argv[4])
"""


def compare_history(card: list[dict], replay: list[dict], epochs: int) -> list[dict]:
    """One row per epoch: each field's card value, replay value, absolute and relative difference."""
    rows = []
    for k in range(epochs):
        a, b = card[k], replay[k]
        fields = {}
        for f in FIELDS:
            x, y = a.get(f), b.get(f)
            if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
                fields[f] = {"card": x, "replay": y, "identical": x == y}
                continue
            diff = abs(float(x) - float(y))
            fields[f] = {"card": x, "replay": y, "identical": x == y, "abs_diff": diff,
                         "rel_diff": diff / abs(float(x)) if x else (0.0 if diff == 0 else float("inf"))}
        rows.append({"epoch": a.get("epoch", k + 1), "identical": all(v["identical"] for v in fields.values()),
                     "fields": fields, "replay_seconds": b.get("seconds")})
    return rows


def replay(card: dict, data: Path, work: Path, epochs: int, poll_s: float = 2.0,
           timeout_s: float | None = None) -> tuple[list[dict], float]:
    """Run the card's training config on ``data`` into ``work`` until ``epochs`` epochs are done.

    Returns the replay's history (its first ``epochs`` entries) and the wall seconds taken."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = json.dumps(card["train_config"])
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, cfg, str(data), str(work), card.get("recipe") or "custom"])
    state = work / "last.json"
    history: list[dict] = []
    try:
        while True:
            if state.is_file():
                try:
                    history = json.loads(state.read_text()).get("history", [])
                except json.JSONDecodeError:  # written atomically, but be safe against a partial read
                    history = []
            if len(history) >= epochs:
                break
            if child.poll() is not None:
                raise SystemExit(f"the training process ended (exit {child.returncode}) after "
                                 f"{len(history)} of {epochs} epochs; see its output above")
            if timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"{len(history)} of {epochs} epochs after {timeout_s:.0f} s; stopped")
            time.sleep(poll_s)
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return history[:epochs], time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a zoo name (models/<name>.json) or a checkpoint card")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the card's run to replay (default 3)")
    ap.add_argument("--data", type=Path, help="the dataset (default: the card's, regenerated or from the cache)")
    ap.add_argument("--work", type=Path, default=Path("runs/retrain-prefix"))
    ap.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    card = read_card(zoo.resolve_checkpoint(args.model))
    history = card.get("history") or []
    if args.epochs < 1 or args.epochs > len(history):
        raise SystemExit(f"--epochs must be 1..{len(history)} (the card's history holds {len(history)} epochs)")
    data = args.data or zoo.default_dataset(card)
    ds = open_dataset(data)
    if ds.fingerprint != card["dataset"]["fingerprint"]:
        raise SystemExit(f"{data}: dataset fingerprint {ds.fingerprint[:12]}… is not the card's "
                         f"{card['dataset']['fingerprint'][:12]}…")
    got, wall = replay(card, Path(data), args.work, args.epochs, timeout_s=args.timeout)
    rows = compare_history(history, got, args.epochs)
    first = next((r for r in rows if not r["identical"]), None)
    result = {
        "tool": "benchmarks/zoo_retrain_prefix.py",
        "command": "python3 benchmarks/zoo_retrain_prefix.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "what": "the first epochs of the card's training run replayed from its own training config on its "
                "regenerated dataset, compared float for float with the card's per-epoch history",
        "model": card.get("model"),
        "weights_sha256": card.get("weights_sha256"),
        "dataset_fingerprint": card["dataset"]["fingerprint"],
        "train_config": card["train_config"],
        "trained_on": card.get("training", {}).get("hardware"),
        "machine": cpu_summary(),
        "epochs_replayed": args.epochs,
        "wall_seconds": round(wall, 1),
        "identical": first is None,
        "first_difference": None if first is None else {
            "epoch": first["epoch"],
            "fields": {f: v for f, v in first["fields"].items() if not v["identical"]}},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"{args.epochs} epochs replayed in {wall:.0f} s: "
          + ("identical to the card's history" if first is None else
             f"first difference at epoch {first['epoch']} ({', '.join(result['first_difference']['fields'])})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
