"""Markdown + self-contained HTML from one or more bench results files.

Rows from several files (a CPU box and a GPU box, say) merge into one table keyed by machine
and backend. Plots: PCK@20 against p50 latency and against size, with the Pareto front
(no other artifact is both at least as accurate and at least as fast/small) marked.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..errors import EdgeposeError
from ..io import atomic_path, read_json
from ..metrics import pck_at
from ..bench.run import SCHEMA

#: An artifact may lose at most this much PCK@20 (percentage points) against fp32 to be shippable.
MAX_DROP_PP = 1.0


def load_results(paths: list[Path]) -> list[dict]:
    docs = []
    for p in paths:
        doc = read_json(p)
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise EdgeposeError(f"not an edgepose bench results file (schema {doc.get('schema') if isinstance(doc, dict) else None!r})", p)
        doc["_source"] = str(p)
        docs.append(doc)
    return docs


def _pck(row: dict, t: float = 0.2, which: str = "clean") -> float | None:
    """PCK@t in % of one bench row, or None when the row has no accuracy."""
    acc = row.get("accuracy", {}).get(which, {}).get("pck", {})
    try:
        return 100 * pck_at(acc, t)
    except KeyError:
        return None


def _machine_name(doc: dict) -> str:
    m = doc["machine"]
    gpu = f" + {m['gpu']['name']}" if doc["device"] == "cuda" and m.get("gpu") else ""
    return f"{m['cpu_model']} ({m['cpu_count']} cores){gpu}"


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) pairs: True where no other point has ≤ cost and ≥ accuracy, one strictly."""
    flags = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a and (c2 < c or a2 > a)) for j, (c2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def _rows(docs: list[dict]) -> list[dict]:
    out = []
    for d in docs:
        for r in d["rows"]:
            out.append({**r, "_machine": _machine_name(d), "_device": d["device"], "_threads": d.get("threads")})
    return out


def verdicts(docs: list[dict], max_drop_pp: float = MAX_DROP_PP) -> list[str]:
    """One sentence per (machine, batch): the fastest artifact within ``max_drop_pp`` of fp32 PCK@20."""
    lines = []
    for d in docs:
        rows = [r for r in d["rows"] if _pck(r) is not None]
        ref = next((r for r in rows if r["kind"] == "torch"), None)
        if not rows or ref is None:
            continue
        for b in map(str, d["batches"]):
            ok = [r for r in rows if _pck(r) >= _pck(ref) - max_drop_pp and b in r["latency"]]
            if not ok:
                continue
            fastest = min(r["latency"][b]["p50_ms"] for r in ok)
            # timings within 5 % of the fastest are a tie on a shared CPU: prefer accuracy there
            tied = [r for r in ok if r["latency"][b]["p50_ms"] <= 1.05 * fastest]
            best = max(tied, key=lambda r: (_pck(r), -r["latency"][b]["p50_ms"]))
            fp32_ort = [r for r in rows if r["precision"] == "fp32" and r["kind"] == "onnx" and b in r["latency"]
                        and r["backend"] == best["backend"]]
            why = (f"p50 {best['latency'][b]['p50_ms']:.2f} ms at PCK@20 {_pck(best):.2f}% "
                   f"(fp32 torch {_pck(ref):.2f}%), {best['size_mb']:.2f} MB")
            if fp32_ort and fp32_ort[0] is not best:
                why += f"; {fp32_ort[0]['latency'][b]['p50_ms'] / best['latency'][b]['p50_ms']:.2f}× faster than fp32 ONNX"
            lines.append(f"On {_machine_name(d)} [{d['device']}] at batch {b}: ship **{best['label']}** on "
                         f"{best['backend']} — {why}.")
    return lines


def _plot(rows: list[dict], xkey: str, xlabel: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    pts = [(r, xkey(r), _pck(r)) for r in rows if _pck(r) is not None and xkey(r) is not None]
    fig, ax = plt.subplots(figsize=(8.5, 4.8), dpi=110)
    if pts:
        front = pareto([(x, y) for _, x, y in pts])
        cmap = plt.get_cmap("tab10")
        for i, ((r, x, y), on) in enumerate(zip(pts, front)):
            name = f"{r['label']} · {r['backend']}" + (f" · {r['_machine'][:18]}" if len({p[0]['_machine'] for p in pts}) > 1 else "")
            ax.scatter(x, y, s=90 if on else 40, marker="s" if r["kind"] == "torch" else "o", color=cmap(i % 10),
                       edgecolor="black" if on else "none", linewidth=1.2, zorder=3,
                       label=name + ("  (Pareto)" if on else ""))
        fx = sorted((x, y) for (_, x, y), on in zip(pts, front) if on)
        if len(fx) > 1:
            ax.plot(*zip(*fx), linestyle="--", color="gray", zorder=2)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PCK@20 on the clean test split (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[dict], batches: list[str]) -> tuple[list[str], list[list[str]]]:
    ref = {}
    for r in rows:
        if r["kind"] == "torch" and _pck(r) is not None:
            ref[r["_machine"]] = _pck(r)
    head = ["machine", "artifact", "backend", "size MB"]
    for b in batches:
        head += [f"p50 b{b} ms", f"p99 b{b} ms"]
    head += ["PCK@10", "PCK@20", "PCK@30", "PCK@40", "PCK@50", "MPJPE", "full PCK@20", "Δ PCK@20 pp"]
    body = []
    for r in rows:
        cells = [r["_machine"], r["label"], r["backend"], f"{r['size_mb']:.2f}"]
        for b in batches:
            lat = r["latency"].get(b)
            cells += [f"{lat['p50_ms']:.2f}", f"{lat['p99_ms']:.2f}"] if lat else ["–", "–"]
        p = [_pck(r, t) for t in (0.1, 0.2, 0.3, 0.4, 0.5)]
        cells += [f"{v:.2f}" if v is not None else "–" for v in p]
        mp = r.get("accuracy", {}).get("clean", {}).get("mpjpe")
        cells.append(f"{mp:.4f}" if mp is not None else "–")
        fp = _pck(r, 0.2, "full")
        cells.append(f"{fp:.2f}" if fp is not None else "–")
        base = ref.get(r["_machine"])
        cells.append(f"{p[1] - base:+.2f}" if p[1] is not None and base is not None else "–")
        body.append(cells)
    return head, body


def build_report(paths: list[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (plots embedded) into ``out_dir``."""
    docs = load_results(paths)
    rows = _rows(docs)
    batches = sorted({b for d in docs for b in map(str, d["batches"])}, key=int)
    head, body = _table(rows, batches)
    verdict = verdicts(docs)
    b0 = batches[0]
    plots = {
        f"PCK@20 vs p50 latency (batch {b0})": _plot(
            rows, lambda r: r["latency"].get(b0, {}).get("p50_ms"), f"p50 latency at batch {b0} (ms, log)",
            f"Accuracy vs latency, batch {b0} (large markers: Pareto front)"),
        "PCK@20 vs size on disk": _plot(
            [r for r in rows if r["backend"] in ("ort-cpu", "torch-cpu", "ort-cuda", "torch-cuda", "tensorrt")],
            lambda r: r["size_mb"], "size on disk (MB = 10^6 bytes, log)", "Accuracy vs size (large markers: Pareto front)"),
    }
    skipped = [(Path(d["_source"]).name, s) for d in docs for s in d.get("skipped", [])]
    baseline = next((r["accuracy"]["mean_pose"] for r in rows if "accuracy" in r), None)

    md = ["# edgepose trade-off report", ""]
    md += [f"Sources: {', '.join(Path(d['_source']).name for d in docs)}.", ""]
    md += ["## Verdict", ""] + [f"- {v}" for v in verdict or ["no accuracy data: nothing to recommend"]] + [""]
    md += [f"Rule: among artifacts whose clean PCK@20 is within {MAX_DROP_PP} pp of the fp32 torch model, "
           "the fastest by p50; timings within 5 % of the fastest count as a tie, broken by PCK@20.", ""]
    md += ["## All artifacts × backends", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(c) + " |" for c in body]
    if baseline:
        md += ["", f"Mean-pose baseline (training mean pose for every window): PCK@20 "
               f"{100 * pck_at(baseline['pck'], 0.2):.2f}%, "
               f"MPJPE {baseline['mpjpe']:.4f}."]
    md += ["", "PCK in %, torso-normalised (right shoulder → left hip), clean test split unless marked *full* "
           "(corrupt windows zero-filled). MPJPE in pixel/1000. Latency per batch call."]
    if skipped:
        md += ["", "## Skipped backends", ""] + [f"- {src}: {s['artifact']} on {s['backend']}: {s['reason']}" for src, s in skipped]
    for d in docs:
        if d.get("note"):
            md += ["", f"Note ({Path(d['_source']).name}): {d['note']}"]
    md += ["", "## Machines", ""]
    for d in docs:
        m = d["machine"]
        flags = ", ".join(f for f, on in m["cpu_flags"].items() if on)
        md.append(f"- {Path(d['_source']).name}: {_machine_name(d)}, {m['arch']}, flags: {flags}; "
                  f"threads {d.get('threads') or 'default'}; versions {m['versions']}")
    md += ["", "## Plots", ""] + [f"![{t}](data:image/png;base64,{p})" for t, p in plots.items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / "report.md"
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(md) + "\n")

    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>edgepose report</title><style>",
             "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}",
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 7px;text-align:right}",
             "td:nth-child(-n+3),th{text-align:left}th{background:#f3f3f3}tr:nth-child(even){background:#fafafa}",
             ".verdict{background:#eef7ee;border-left:4px solid #3a3;padding:.6em 1em}img{max-width:100%}",
             "</style></head><body><h1>edgepose trade-off report</h1>",
             "<div class='verdict'><h2>Verdict</h2><ul>"]
    import re

    for v in verdict or ["no accuracy data: nothing to recommend"]:
        parts.append("<li>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc(v)) + "</li>")
    parts.append(f"</ul><p>Rule: fastest artifact within {MAX_DROP_PP} pp PCK@20 of fp32 (p50 within 5 % = tie, broken by PCK@20).</p></div>")
    parts.append("<h2>All artifacts × backends</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
    for c in body:
        parts.append("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in c) + "</tr>")
    parts.append("</table>")
    for line in md:
        if line.startswith("Mean-pose baseline") or line.startswith("PCK in %"):
            parts.append(f"<p>{esc(line)}</p>")
    if skipped:
        parts.append("<h2>Skipped backends</h2><ul>" + "".join(
            f"<li>{esc(src)}: {esc(s['artifact'])} on {esc(s['backend'])}: {esc(s['reason'])}</li>" for src, s in skipped) + "</ul>")
    parts.append("<h2>Plots</h2>" + "".join(f"<h3>{esc(t)}</h3><img alt='{esc(t)}' src='data:image/png;base64,{p}'>"
                                            for t, p in plots.items()))
    parts.append("<h2>Machines</h2><ul>" + "".join(f"<li>{esc(x[2:])}</li>" for x in md if x.startswith("- ") and "versions" in x) + "</ul>")
    parts.append("</body></html>")
    html_path = out_dir / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text("\n".join(parts))
    return md_path, html_path
