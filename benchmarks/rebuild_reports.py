"""Rebuild every committed report and table under ``benchmarks/results/`` from its committed sources.

    python benchmarks/rebuild_reports.py           # rewrite them all
    python benchmarks/rebuild_reports.py --check   # exit 1 naming every report that differs from a rebuild

A report is never edited by hand: each entry of :data:`REPORTS` names the results files it is made
from and the function (the benchmark script's own renderer, or ``edgepose report``) that makes it,
so a rule that changes (the verdict's, a table's columns) reaches every committed report with one
command, and ``tests/test_reports.py`` fails while one is stale. Figures (PNG) and the HTML page are
rebuilt too but compared only by name (their bytes depend on the plotting library's version).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
if str(HERE) not in sys.path:  # the benchmark scripts import each other's shared module as `common`
    sys.path.insert(0, str(HERE))


@dataclass(frozen=True)
class Report:
    """One committed report: where it lives, what it is made from, how it is made.

    ``make(sources, out_dir)`` writes the report's files into ``out_dir`` (named as committed).
    """

    path: str                     # folder (a report with figures) or file, relative to benchmarks/results
    sources: tuple[str, ...]      # relative to benchmarks/results
    make: Callable[[list[Path], Path], None]
    text: tuple[str, ...]         # files compared byte for byte; the others only by name


def _edgepose_report(keep_html: bool = True):
    def make(sources: list[Path], out: Path) -> None:
        from edgepose.reporting import build_report

        build_report(sources, out)
        if not keep_html:
            (out / "report.html").unlink()
    return make


def _markdown(module: str, fn: str = "to_markdown", out_name: str | None = None):
    def make(sources: list[Path], out: Path) -> None:
        import importlib

        render = getattr(importlib.import_module(module), fn)
        doc = json.loads(sources[0].read_text(encoding="utf-8"))
        (out / (out_name or sources[0].with_suffix(".md").name)).write_text(render(doc), encoding="utf-8")
    return make


def _runtime_bench(sources: list[Path], out: Path) -> None:
    from runtime_overhead import write_markdown

    write_markdown(json.loads(sources[0].read_text(encoding="utf-8")), out / "runtime-bench.md")


def _sensitivity(sources: list[Path], out: Path) -> None:
    from edgepose.analysis import load_result

    (out / "sensitivity.md").write_text(load_result(sources[0]).to_markdown(), encoding="utf-8")


def _matrix(sources: list[Path], out: Path) -> None:
    from conformance_matrix import matrix_markdown

    (out / "matrix.md").write_text(matrix_markdown(json.loads(sources[0].read_text(encoding="utf-8"))),
                                   encoding="utf-8")


def _summary_run_default(sources: list[Path], out: Path) -> None:
    from summarize import summarize

    cpu, repeat, fx, reference = sources
    summarize(cpu, out / "summary.md", repeat=repeat, fx=fx, reference=reference)


def _rounds_needed(sources: list[Path], out: Path) -> None:
    from rounds_needed import SOURCES, write

    write(sources, out, list(SOURCES))  # labelled as committed; the entry below is made from SOURCES


def _rounds_needed_sources() -> tuple[str, ...]:
    from rounds_needed import SOURCES

    return tuple(SOURCES)


#: every committed report, keyed by its path under benchmarks/results
REPORTS: dict[str, Report] = {r.path: r for r in [
    # the main job on the shipped zoo (AMD EPYC with AVX-512 VNNI, no AMX; MACHINE=amd-epyc-avx512 rerun_zoo_results.sh run-default)
    Report("run-default-amd-epyc-avx512", ("run-default-amd-epyc-avx512/cpu.json",), _edgepose_report(keep_html=False),
           ("report.md",)),
    Report("run-default-amd-epyc-avx512/summary.md",
           ("run-default-amd-epyc-avx512/cpu.json", "run-default-amd-epyc-avx512/cpu-repeat.json",
            "reference-fx-wiflow-half.json", "../reference_figures.json"), _summary_run_default,
           ("summary.md", "summary.json")),
    # the main job on the shipped zoo (Intel Xeon with AVX-512 VNNI and AMX-INT8; rerun_zoo_results.sh run-default)
    Report("run-default-intel-xeon-amx", ("run-default-intel-xeon-amx/cpu.json",), _edgepose_report(keep_html=False),
           ("report.md",)),
    Report("run-default-intel-xeon-amx/summary.md",
           ("run-default-intel-xeon-amx/cpu.json", "run-default-intel-xeon-amx/cpu-repeat.json",
            "reference-fx-wiflow-half.json", "../reference_figures.json"), _summary_run_default,
           ("summary.md", "summary.json")),
    Report("rounds-needed.md", _rounds_needed_sources(), _rounds_needed, ("rounds-needed.json", "rounds-needed.md")),
    Report("quant-table.md", ("quant-table.json",), _markdown("quant_table"), ("quant-table.md",)),
    Report("precision-plan-intel-xeon-amx-2t.md", ("precision-plan-intel-xeon-amx-2t.json",), _markdown("precision_plan"),
           ("precision-plan-intel-xeon-amx-2t.md",)),
    Report("precision-plan-amd-epyc-avx512-2t.md", ("precision-plan-amd-epyc-avx512-2t.json",),
           _markdown("precision_plan"), ("precision-plan-amd-epyc-avx512-2t.md",)),
    Report("runtime-bench.md", ("runtime-bench.json",), _runtime_bench, ("runtime-bench.md",)),
    Report("quant-sensitivity-wiflow-half/sensitivity.md", ("quant-sensitivity-wiflow-half/sensitivity.json",),
           _sensitivity, ("sensitivity.md",)),
    Report("matrix.md", ("matrix.json",), _matrix, ("matrix.md",)),
    Report("int8-threads-amd-epyc-avx512.md", ("int8-threads-amd-epyc-avx512.json",), _markdown("int8_threads_lib"),
           ("int8-threads-amd-epyc-avx512.md",)),
    # the first investigation's converted measurements (v1 model, spinning on): the ones no rerun repeats
    Report("int8-threads-amd-epyc-v1model.md", ("int8-threads-amd-epyc-v1model.json",), _markdown("int8_threads_lib"),
           ("int8-threads-amd-epyc-v1model.md",)),
    Report("int8-threads-intel-xeon-amx.md", ("int8-threads-intel-xeon-amx.json",), _markdown("int8_threads_lib"),
           ("int8-threads-intel-xeon-amx.md",)),
    Report("tcn-padding-intel-xeon-amx.md", ("tcn-padding-intel-xeon-amx.json",), _markdown("tcn_padding"),
           ("tcn-padding-intel-xeon-amx.md",)),
    Report("tcn-fold-intel-xeon-amx.md", ("tcn-fold-intel-xeon-amx.json",), _markdown("tcn_fold"),
           ("tcn-fold-intel-xeon-amx.md",)),
    Report("tcn-padding-amd-epyc-avx512.md", ("tcn-padding-amd-epyc-avx512.json",), _markdown("tcn_padding"),
           ("tcn-padding-amd-epyc-avx512.md",)),
    Report("search-noise-amd-epyc-avx512.md", ("search-noise-amd-epyc-avx512.json",), _markdown("search_noise"),
           ("search-noise-amd-epyc-avx512.md",)),
    Report("tcn-fold-amd-epyc-avx512.md", ("tcn-fold-amd-epyc-avx512.json",), _markdown("tcn_fold"),
           ("tcn-fold-amd-epyc-avx512.md",)),
    Report("held-out-by-activity.md", ("held-out-by-activity.json",), _markdown("held_out_by_activity"),
           ("held-out-by-activity.md",)),
]}


def build(report: Report, results: Path, into: Path) -> list[Path]:
    """Make ``report`` from the sources under ``results`` into the folder ``into``; returns its files."""
    sources = [(results / s).resolve() for s in report.sources]
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"{report.path}: missing source(s) {', '.join(missing)}")
    into.mkdir(parents=True, exist_ok=True)
    # sources are handed over by name inside a scratch copy, so what a report prints about its
    # sources does not depend on where the repository is checked out
    scratch = into / ".sources"
    staged = []
    for i, (s, rel) in enumerate(zip(sources, report.sources)):
        dst = scratch / Path(rel).name
        if dst in staged:  # two sources of one name (cpu.json of two runs): the later one in its own folder
            dst = scratch / str(i) / Path(rel).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, dst)
        staged.append(dst)
    report.make(staged, into)
    shutil.rmtree(scratch)
    return sorted(p for p in into.iterdir() if p.is_file())


def _target(report: Report, results: Path) -> Path:
    """The committed folder that holds the report's files."""
    p = results / report.path
    return p if not p.suffix else p.parent


def check(results: Path = RESULTS, names: list[str] | None = None) -> list[str]:
    """Problems, one line each: a report whose committed text differs from a rebuild, or a file it lacks."""
    problems = []
    for key in names or list(REPORTS):
        report = REPORTS[key]
        with tempfile.TemporaryDirectory(prefix="edgepose-rebuild-") as tmp:
            try:
                files = build(report, results, Path(tmp))
            except FileNotFoundError as exc:
                problems.append(str(exc))
                continue
            target = _target(report, results)
            for f in files:
                committed = target / f.name
                if not committed.is_file():
                    problems.append(f"{report.path}: {f.name} is missing from {target.relative_to(results)}")
                elif f.name in report.text and committed.read_text(encoding="utf-8") != f.read_text(encoding="utf-8"):
                    problems.append(f"{report.path}: {f.name} is stale (rebuild with python benchmarks/rebuild_reports.py)")
    return problems


def rebuild(results: Path = RESULTS, names: list[str] | None = None) -> None:
    """Rewrite every (or each named) report in place from its sources."""
    for key in names or list(REPORTS):
        report = REPORTS[key]
        with tempfile.TemporaryDirectory(prefix="edgepose-rebuild-") as tmp:
            files = build(report, results, Path(tmp))
            target = _target(report, results)
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(f, target / f.name)
        print(f"rebuilt {report.path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when a report is stale")
    ap.add_argument("names", nargs="*", help=f"reports to rebuild (default all: {', '.join(REPORTS)})")
    a = ap.parse_args(argv)
    unknown = [n for n in a.names if n not in REPORTS]
    if unknown:
        ap.error(f"unknown report(s) {', '.join(unknown)}")
    if a.check:
        problems = check(names=a.names or None)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    rebuild(names=a.names or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
