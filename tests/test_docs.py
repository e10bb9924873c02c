"""Every measured figure in the docs is what its committed source says (``benchmarks/render_docs.py``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import render_docs  # noqa: E402


def test_committed_docs_match_their_sources():
    """A figure typed by hand, a deleted source or a stale render fails here; `render_docs.py` mends it."""
    assert render_docs.run(check=True) == []


def test_docs_link_only_to_results_that_exist():
    """A doc that points at a results file deleted as stale (or never committed) fails."""
    missing = []
    for doc in render_docs.doc_files():
        for rel in set(re.findall(r"benchmarks/results/[\w./-]+\.(?:json|md|csv|png)", doc.read_text())):
            if not (ROOT / rel).is_file():
                missing.append(f"{doc.relative_to(ROOT)}: {rel}")
    assert missing == []


@pytest.fixture
def tiny_repo(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"rows": [{"row": "fp32", "pck20": 0.5258, "d": -1.234},
                                                          {"row": "int8", "pck20": 0.51, "d": 0.5}],
                                                 "runs": [1.1, 1.3, 1.2], "pck": {"0.2": 0.5}}))
    doc = tmp_path / "doc.md"
    doc.write_text("<!--source r = r.json-->\n"
                   "fp32 scores <!--fig r | rows[row=fp32].pck20 | 100*.2f-->52.58<!--/fig--> %, "
                   "Δ <!--fig r.json | rows[row=fp32].d | +.2f-->−1.23<!--/fig--> pp, "
                   "reruns <!--fig r | runs[0] ; r | runs[1] | .2f-->1.10–1.30<!--/fig-->×, "
                   "max <!--fig r | runs.#max-->1.3<!--/fig-->, "
                   "at 0.2 <!--fig r | pck[0.2]-->0.5<!--/fig-->.\n")
    return tmp_path, doc


def test_render_and_check_on_a_doc_it_did_not_write(tiny_repo):
    root, doc = tiny_repo
    assert render_docs.run(root, check=True, files=[doc]) == []
    src = json.loads((root / "r.json").read_text())
    src["rows"][0]["pck20"] = 0.4  # the source is regenerated
    (root / "r.json").write_text(json.dumps(src))
    problems = render_docs.run(root, check=True, files=[doc])
    assert len(problems) == 1 and "'52.58'" in problems[0] and "'40.00'" in problems[0]
    assert render_docs.run(root, files=[doc]) == []  # render mends it
    assert "-->40.00<!--/fig-->" in doc.read_text() and render_docs.run(root, check=True, files=[doc]) == []


@pytest.mark.parametrize("bad, why", [
    ("<!--fig gone.json | a-->1<!--/fig-->", "does not exist"),
    ("<!--fig r | rows[row=fp16].pck20-->1<!--/fig-->", "0 entries"),
    ("<!--fig r | rows[0].nope-->1<!--/fig-->", "no key 'nope'"),
    ("`code <!--fig r | runs[0]-->1.1<!--/fig-->`", "code span"),
    ("<!--table nosuch-->\nx\n<!--/table-->", "no such renderer"),
    ("<!--fig r-->1<!--/fig-->", "SOURCE | SELECTOR"),
    ("| a | <!--fig r | runs[0]-->1.1<!--/fig--> |", "splits the cell"),
])
def test_a_figure_that_cannot_be_traced_is_a_problem(tiny_repo, bad, why):
    root, doc = tiny_repo
    doc.write_text("<!--source r = r.json-->\n" + bad + "\n")
    problems = render_docs.run(root, check=True, files=[doc])
    assert problems and why in problems[0], problems


def test_negative_numbers_use_a_true_minus_sign():
    assert render_docs.format_value(-1.5, "+.2f") == "−1.50"
    assert render_docs.format_value(0.123, "100*.1f") == "12.3"


def test_a_table_cell_figure_uses_escaped_separators(tiny_repo):
    root, doc = tiny_repo
    doc.write_text("<!--source r = r.json-->\n| a | b |\n|---|---|\n| x | <!--fig r \\| runs[1] \\| .2f-->0<!--/fig--> |\n")
    assert render_docs.run(root, files=[doc]) == []
    assert "\\| .2f-->1.30<!--/fig--> |" in doc.read_text()
