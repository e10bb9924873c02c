"""How many paired rounds the main job's verdict needs: the bench's stopping rule replayed on committed runs.

For every committed ``edgepose run`` bench document, the decision the bench would have taken after
each round (``edgepose.benchmarking.adaptive.decisions_after``: the probe rule on those rounds'
readings, the accuracy gate, the stored paired ratios) — so the minimum number of rounds the main
job asks for can be chosen from measurements, and checked again whenever a run is committed.

    python benchmarks/rounds_needed.py        # writes benchmarks/results/rounds-needed.{json,md}

``python benchmarks/rebuild_reports.py`` rebuilds both from the same sources.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: The committed main-job bench documents made with more rounds than the verdict's minimum
#: (relative to benchmarks/results), two per box: what the replay can learn from.
SOURCES = ("zoo-first-v2/run-default-amd-epyc/cpu.json", "zoo-first-v2/run-default-amd-epyc/cpu-repeat.json",
           "run-default-intel-xeon-amx-5rounds/cpu.json", "run-default-intel-xeon-amx-5rounds/cpu-repeat.json")

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def replay(doc: dict, label: str) -> dict:
    """One run's decisions after every round, when each batch size was first decided with the final
    leader (and stayed so), and the seconds spent on rounds after both were."""
    from edgepose.benchmarking.adaptive import decisions_after
    from edgepose.benchmarking.paired import MIN_ROUNDS

    n = int(doc["rounds"])
    by_round = [decisions_after(doc, k) for k in range(1, n + 1)]
    final = by_round[-1]
    if final != doc["decision"]:
        raise ValueError(f"{label}: replaying all {n} rounds gives {final}, the document says {doc['decision']}")
    settled = {}
    for b, last in final.items():
        k = n
        while k > 1 and by_round[k - 2].get(b, {}).get("decided") and by_round[k - 2][b]["leader"] == last["leader"]:
            k -= 1
        settled[b] = k if last["decided"] else None
    at = max((k for k in settled.values() if k is not None), default=None)
    secs = [float(r["seconds"]) for r in doc.get("rounds_detail", [])]
    flags = doc["machine"].get("cpu_flags", {})
    return {
        "source": label,
        "cpu_model": doc["machine"].get("cpu_model"),
        "cpu_flags": [f for f in FLAGS if flags.get(f)],
        "created": doc.get("created"),
        "rounds": n,
        "rounds_min": doc.get("rounds_min"),
        "stopped": doc.get("stopped"),
        "disturbed": doc.get("rounds_disturbed"),
        "final": {b: {"leader": d["leader"], "runner_up": d["runner_up"], "decided": d["decided"]}
                  for b, d in final.items()},
        "by_round": [{b: {"leader": d["leader"], "decided": d["decided"]} for b, d in r.items()} for r in by_round],
        "settled_at": settled,
        "same_at_min_rounds": n >= MIN_ROUNDS and all(
            by_round[MIN_ROUNDS - 1][b]["leader"] == d["leader"] and by_round[MIN_ROUNDS - 1][b]["decided"] == d["decided"]
            for b, d in final.items()),
        "round_seconds": secs,
        "seconds_after_settled": round(sum(secs[at:]), 1) if at is not None and secs else None,
    }


def rounds_needed(sources: list[Path], labels: list[str] | None = None) -> dict:
    """The document: every run replayed, and whether the minimum rounds would have named the same artifacts."""
    from edgepose.benchmarking.paired import MIN_ROUNDS

    labels = labels or [str(s) for s in sources]
    runs = [replay(json.loads(Path(s).read_text(encoding="utf-8")), lab) for s, lab in zip(sources, labels)]
    return {
        "what": "the bench's stopping rule (edgepose.benchmarking.adaptive.decisions_after) replayed on the first k "
                "rounds of every committed main-job bench: per batch size the leader among the artifacts that pass "
                "the accuracy gate, and whether it is decided",
        "min_rounds": MIN_ROUNDS,
        "runs": runs,
        "same_at_min_rounds": sum(r["same_at_min_rounds"] for r in runs),
        "of": len(runs),
    }


def _short(key: str | None) -> str:
    return "—" if key is None else key.split(" on ")[0].removeprefix("wiflow-half.")


def _pair(d: dict) -> str:
    return f"{_short(d.get('leader'))} ({_short(d.get('runner_up'))})"


def to_markdown(doc: dict) -> str:
    """The document as a table, one row per run."""
    lines = [
        "# Rounds the main job's verdict needs",
        "",
        f"The bench's stopping rule replayed on the first k rounds of each committed run of the main job "
        f"(`benchmarks/rounds_needed.py`). *Settled at*: the first round from which the batch size's decision "
        f"is decided with the final leader and stays so. In **{doc['same_at_min_rounds']} of {doc['of']}** runs "
        f"the decision after the verdict rule's minimum of {doc['min_rounds']} undisturbed rounds is the final one.",
        "",
        "| run | CPU | rounds run (min) | disturbed | final leader (runner-up) b1 / b64 | settled at b1 / b64 | same after "
        f"{doc['min_rounds']} | seconds of rounds after settling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        fin, st = r["final"], r["settled_at"]
        lines.append(
            f"| `{r['source']}` | {r['cpu_model']} ({', '.join(r['cpu_flags'])}) | {r['rounds']} ({r['rounds_min']}) | "
            f"{r['disturbed']} | {' / '.join(_pair(fin.get(b, {})) for b in ('1', '64'))} | "
            f"{st.get('1')} / {st.get('64')} | {'yes' if r['same_at_min_rounds'] else 'no'} | "
            f"{r['seconds_after_settled']} |")
    lines += ["", "The runner-up is the next fastest artifact inside the accuracy gate. The main job starts with "
              f"{doc['min_rounds']} rounds and adds rounds while a batch size is undecided (a close race), within "
              "its time budget; a race this table did not see is decided by that rule, not by this replay.", ""]
    return "\n".join(lines)


def write(sources: list[Path], out: Path, labels: list[str] | None = None) -> None:
    """Write ``rounds-needed.json`` and ``rounds-needed.md`` into the folder ``out``."""
    doc = rounds_needed(sources, labels)
    (out / "rounds-needed.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (out / "rounds-needed.md").write_text(to_markdown(doc), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    write([RESULTS / s for s in SOURCES], a.out, list(SOURCES))
    print(f"wrote {a.out / 'rounds-needed.json'} and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
