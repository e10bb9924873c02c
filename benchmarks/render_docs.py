"""Render every measured figure in the docs from the committed results file it comes from.

    python benchmarks/render_docs.py            # rewrite the figures in place
    python benchmarks/render_docs.py --check    # exit 1 listing every figure that disagrees with its source

A figure in Markdown is written between markers that name its source::

    <!--fig benchmarks/results/quant-table.json | models[model=wiflow-half].rows[row=fp32].pck20 | 100*.2f-->52.60<!--/fig-->

- the source is a JSON file relative to the repository root (a card, a results document), or a
  short name that the same file gives it once with ``<!--source NAME = PATH-->``;
- the selector walks the document: ``a.b`` for keys, ``rows[2]`` for an index, ``rows[8:]`` for a
  slice, ``rows[row=fp32]`` (or ``rows[a=1,b=2]``) for the one list entry whose fields match, ``rows[*].x``
  for the field ``x`` of every entry, ``pck[0.2]`` for a key with dots in it, and ``#len``, ``#min``, ``#max``, ``#sum`` of a list;
- the format is a Python format spec, optionally scaled first (``100*.2f``: a fraction as a
  percentage); negative numbers are written with a true minus sign (−).

Inside a Markdown table row the separators are written ``\\|`` (a bare ``|`` would split the cell;
GitHub unescapes it before it reads the comment); ``--check`` rejects a bare one there.

Where reruns of one measurement differ, a figure names several ``SOURCE | SELECTOR`` items
separated by ``;`` and is rendered as their spread, ``low–high``. A whole table comes from a registered renderer (:data:`TABLES`), on lines of its own::

    <!--table NAME ARG…-->
    …
    <!--/table-->

The markers are HTML comments, so the rendered Markdown shows only the figures.
``tests/test_docs.py`` runs ``--check`` on the committed docs: a figure typed by hand into a marker,
a source that was deleted or regenerated without re-rendering, or a selector that no longer
matches fails the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
#: the Markdown files whose figures are rendered here
DOCS = ("README.md", "docs/*.md", "models/README.md", "benchmarks/README.md")

FIG = re.compile(r"<!--fig (?P<spec>[^>]*?)-->(?P<text>.*?)<!--/fig-->", re.S)
TABLE = re.compile(r"<!--table (?P<spec>[^>]*?)-->\n(?P<text>.*?)<!--/table-->", re.S)
SOURCE = re.compile(r"<!--source (?P<name>[\w-]+) = (?P<path>\S+)-->")
_STEP = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


class RenderError(Exception):
    """A marker whose source is missing or whose selector or format does not apply."""


def _step(value, key: str, bracket: str, selector: str):
    if key in ("#len", "#min", "#max", "#sum"):
        if not isinstance(value, list):
            raise RenderError(f"{key} needs a list at {selector!r}")
        return {"#len": len, "#min": min, "#max": max, "#sum": sum}[key](value)
    if key:
        if not isinstance(value, dict) or key not in value:
            raise RenderError(f"no key {key!r} at {selector!r}")
        return value[key]
    if isinstance(value, dict):  # a key with dots in it: pck[0.2]
        if bracket not in value:
            raise RenderError(f"no key {bracket!r} at {selector!r}")
        return value[bracket]
    if bracket == "*":
        if not isinstance(value, list):
            raise RenderError(f"[*] needs a list at {selector!r}")
        return _Each(value)
    if "=" in bracket:
        conds = [c.split("=", 1) for c in bracket.split(",")]
        hits = [v for v in value if isinstance(v, dict) and all(str(v.get(f)) == w for f, w in conds)]
        if len(hits) != 1:
            raise RenderError(f"{len(hits)} entries with {bracket!r} at {selector!r}")
        return hits[0]
    try:
        if ":" in bracket:
            lo, hi = (int(x) if x else None for x in bracket.split(":"))
            return value[lo:hi]
        return value[int(bracket)]
    except (IndexError, ValueError, TypeError, KeyError):
        raise RenderError(f"no entry [{bracket}] at {selector!r}") from None


class _Each(list):
    """A list whose entries the following steps apply to one by one (after ``[*]``)."""


def select(doc, selector: str):
    """The value at ``selector`` in ``doc`` (see the module docstring for the syntax)."""
    value = doc
    for key, bracket in _STEP.findall(selector):
        if isinstance(value, _Each) and key not in ("#len", "#min", "#max", "#sum"):
            value = _Each(_step(v, key, bracket, selector) for v in value)
        else:
            value = _step(list(value) if isinstance(value, _Each) else value, key, bracket, selector)
    return list(value) if isinstance(value, _Each) else value


def format_value(value, fmt: str) -> str:
    """``value`` formatted by ``fmt`` (``[scale*]spec``), negatives with a true minus sign."""
    scale = 1.0
    if "*" in fmt:
        head, fmt = fmt.split("*", 1)
        scale = float(head)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = value * scale if scale != 1.0 else value
    try:
        text = format(value, fmt)
    except (TypeError, ValueError) as exc:
        raise RenderError(f"cannot format {value!r} with {fmt!r}: {exc}") from None
    return text.replace("-", "−") if isinstance(value, (int, float)) else text


class Sources:
    """JSON documents read once per run, by repository-relative path (or a name the doc gave it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._docs: dict[str, object] = {}
        self.aliases: dict[str, str] = {}

    def get(self, rel: str):
        rel = self.aliases.get(rel, rel)
        if rel not in self._docs:
            path = self.root / rel
            if not path.is_file():
                raise RenderError(f"source {rel} does not exist")
            self._docs[rel] = json.loads(path.read_text(encoding="utf-8"))
        return self._docs[rel]


def render_figure(spec: str, sources: Sources) -> str:
    """The text of one ``<!--fig SPEC-->`` marker: ``SOURCE | SELECTOR [| FORMAT]``, or several
    ``SOURCE | SELECTOR`` items joined by ``;`` (the last may carry the format) for a spread."""
    fmt, values = "", []
    for item in spec.split(";"):
        parts = [x.strip() for x in item.replace("\\|", "|").split("|")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise RenderError(f"a figure is 'SOURCE | SELECTOR [| FORMAT]', got {item.strip()!r}")
        if len(parts) == 3:
            fmt = parts[2]
        values.append(select(sources.get(parts[0]), parts[1]))
    if len(values) == 1:
        return format_value(values[0], fmt)
    return format_value(min(values), fmt) + "–" + format_value(max(values), fmt)


#: table name → renderer(sources, *args) → Markdown (without the trailing newline)
TABLES: dict[str, Callable[..., str]] = {}


def table(name: str):
    def register(fn):
        TABLES[name] = fn
        return fn
    return register


@table("include")
def _include(sources: Sources, rel: str, *what: str) -> str:
    """The sections of a committed report (itself rebuilt from JSON by ``rebuild_reports.py``), from
    its first ``##`` heading on, headings demoted by two levels; ``rows=TEXT`` keeps only the table
    rows containing TEXT (``_`` for a space) and drops the prose."""
    path = sources.root / rel
    if not path.is_file():
        raise RenderError(f"source {rel} does not exist")
    keep = [w.split("=", 1)[1].replace("_", " ") for w in what if w.startswith("rows=")]
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("## ")), 0)
    out: list[str] = []
    for line in lines[start:]:
        if line.startswith("#"):
            out.append("##" + line)
        elif line.startswith("|"):
            is_header = not out or not out[-1].startswith("|") or set(line) <= set("|-: ")
            if is_header or not keep or any(k in line for k in keep):
                out.append(line)
        elif not keep:
            out.append(line)
    text = "\n".join(out).strip()
    return text if not keep else "\n".join(x for x in text.splitlines() if x.startswith("|"))


@table("zoo")
def _zoo_table(sources: Sources) -> str:
    """The zoo's headline table and learning curves, from every card in ``models/``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from zoo_publish import table as zoo_table

    return zoo_table(sources.root / "models")


def render_text(text: str, sources: Sources) -> tuple[str, list[str]]:
    """``text`` with every marker re-rendered, and the problems met (one line each)."""
    problems: list[str] = []
    sources.aliases = {m.group("name"): m.group("path") for m in SOURCE.finditer(text)}

    def fig(m: re.Match) -> str:
        para_start = m.string.rfind("\n\n", 0, m.start()) + 1  # code spans may wrap, never across paragraphs
        if FIG.sub("", m.string[para_start:m.start()]).count("`") % 2:
            problems.append(f"fig {m.group('spec')!r}: inside a `code span`, where the marker would show")
        line_start = m.string.rfind("\n", 0, m.start()) + 1
        if m.string.startswith("|", line_start) and re.search(r"(?<!\\)\|", m.group("spec")):
            problems.append(f"fig {m.group('spec')!r}: in a table row its bare '|' splits the cell; write '\\|'")
        try:
            new = render_figure(m.group("spec"), sources)
        except RenderError as exc:
            problems.append(f"fig {m.group('spec')!r}: {exc}")
            return m.group(0)
        return f"<!--fig {m.group('spec')}-->{new}<!--/fig-->"

    def tab(m: re.Match) -> str:
        name, *args = m.group("spec").split()
        if name not in TABLES:
            problems.append(f"table {name!r}: no such renderer (known: {', '.join(sorted(TABLES))})")
            return m.group(0)
        try:
            body = TABLES[name](sources, *args)
        except RenderError as exc:
            problems.append(f"table {m.group('spec')!r}: {exc}")
            return m.group(0)
        return f"<!--table {m.group('spec')}-->\n{body.rstrip()}\n<!--/table-->"

    return FIG.sub(fig, TABLE.sub(tab, text)), problems


def doc_files(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in DOCS for p in root.glob(pattern)})


def run(root: Path = ROOT, check: bool = False, files: list[Path] | None = None) -> list[str]:
    """Render (or, with ``check``, compare) every doc; returns the problems, ``file: problem`` each."""
    sources = Sources(root)
    out = []
    for path in files if files is not None else doc_files(root):
        text = path.read_text(encoding="utf-8")
        new, problems = render_text(text, sources)
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        out += [f"{rel}: {p}" for p in problems]
        if new != text:
            if check:
                old_figs = FIG.findall(text) + TABLE.findall(text)
                new_figs = FIG.findall(new) + TABLE.findall(new)
                for (spec, was), (_, now) in zip(old_figs, new_figs):
                    if was != now:
                        out.append(f"{rel}: {spec!r} says {was.strip()[:60]!r}, its source gives {now.strip()[:60]!r}")
            else:
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(new)
                os.replace(tmp, path)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when a figure disagrees")
    a = ap.parse_args(argv)
    problems = run(check=a.check)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("docs: every figure matches its source" if a.check else "docs: rendered")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
