"""A report as a list of blocks, rendered to Markdown (figures as files beside it) and to
self-contained HTML (figures embedded), so both always say the same thing."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field


@dataclass
class Figure:
    title: str
    filename: str
    png: bytes


@dataclass
class Block:
    """``kind``: h1, h2, h3, p, ul, table or figs; ``text``/``items``/``head``+``rows``/``figures``."""

    kind: str
    text: str = ""
    items: list[str] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    css: str = ""


def to_markdown(blocks: list[Block]) -> str:
    """Markdown; figures are linked by file name (the caller writes them beside the .md)."""
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "ul":
            out += [f"- {x}" for x in b.items] + [""]
        elif b.kind == "table":
            out += ["| " + " | ".join(b.head) + " |", "|" + "---|" * len(b.head)]
            out += ["| " + " | ".join(r) + " |" for r in b.rows] + [""]
        elif b.kind == "figs":
            out += [" ".join(f"![{f.title}]({f.filename})" for f in b.figures), ""]
    return "\n".join(out).rstrip() + "\n"


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
         "td,th{border:1px solid #ccc;padding:4px 7px;text-align:right}"
         "td:nth-child(-n+3),th{text-align:left}th{background:#f3f3f3}tr:nth-child(even){background:#fafafa}"
         ".verdict{background:#eef7ee;border-left:4px solid #3a3;padding:.3em 1em}"
         ".figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.figs figure{margin:0}"
         "img{max-width:100%}figcaption{font-size:12px;color:#555}")


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: figures embedded as ``data:`` PNGs, no external files."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p class='{b.css}'>{_inline(b.text)}</p>" if b.css else f"<p>{_inline(b.text)}</p>")
        elif b.kind == "ul":
            cls = f" class='{b.css}'" if b.css else ""
            parts.append(f"<ul{cls}>" + "".join(f"<li>{_inline(x)}</li>" for x in b.items) + "</ul>")
        elif b.kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
                         + "</table>")
        elif b.kind == "figs":
            parts.append("<div class='figs'>" + "".join(
                f"<figure><img alt='{html.escape(f.title)}' src='data:image/png;base64,"
                f"{base64.b64encode(f.png).decode()}'><figcaption>{html.escape(f.title)}</figcaption></figure>"
                for f in b.figures) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
