"""The package's shape: one direction of imports, no cycles, small modules, a lazy top level.

The layer of every module is named here (``LAYERS``); a module may import its own layer and the
layers below, never one above. A new module that no prefix places fails the test until it is
given a layer: the rule lives in docs/architecture.md.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edgepose"

#: module-name prefix → layer (lower = more basic). Longest prefix wins.
LAYERS = {
    # 0: torch-free foundations: errors and I/O, the locked metric, statistics, timing, the box runtime
    "edgepose": 0, "edgepose.version": 0, "edgepose.errors": 0, "edgepose.io": 0, "edgepose.interrupt": 0,
    "edgepose.skeleton": 0, "edgepose.metrics": 0, "edgepose.stats": 0, "edgepose.runtime": 0,
    "edgepose.timing": 0,
    "edgepose.data": 1,
    "edgepose.models": 2,
    "edgepose.evaluation": 3, "edgepose.training": 3, "edgepose.zoo": 3,
    "edgepose.quantization": 4,
    "edgepose.exporting": 5,
    "edgepose.analysis": 6, "edgepose.predictors": 6,
    "edgepose.benchmarking": 7,
    "edgepose.reporting": 8,
    "edgepose.deployment": 9,
    # 10: the faces: typed results, the API, the pipeline, the conformance matrix, the CLI
    "edgepose.results": 10, "edgepose.api": 10, "edgepose.pipeline": 10, "edgepose.conformance": 10,
    "edgepose.diagnostics": 10, "edgepose.cli": 10, "edgepose.__main__": 10,
}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _runtime_imports(path: Path, name: str) -> set[str]:
    """Modules imported at run time (``if TYPE_CHECKING:`` blocks skipped), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        targets = set()
        for imp in _runtime_imports(path, name):
            while imp and imp not in mods:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                targets.add(imp)
        graph[name] = targets
    return graph


def layer(module: str) -> int | None:
    """The layer of ``module`` by its longest listed prefix (``None`` when none matches)."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in LAYERS and (k > 1 or module == "edgepose"):
            return LAYERS[prefix]
    return None


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a higher layer."""
    return sorted(f"{a} -> {b}" for a, bs in graph.items() for b in bs if layer(b) > layer(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_every_module_has_a_layer():
    assert [m for m in _modules() if layer(m) is None] == []


def test_imports_run_one_way_and_never_in_a_circle():
    graph = _graph()
    assert cycles(graph) == []
    assert upward_arrows(graph) == []


def test_the_checker_sees_an_upward_arrow_and_a_cycle():
    """The two checks above fail on a graph that breaks them (so they can fail)."""
    bad = {"edgepose.data.base": {"edgepose.exporting.card"}, "edgepose.exporting.card": {"edgepose.data.base"}}
    assert upward_arrows(bad) == ["edgepose.data.base -> edgepose.exporting.card"]
    assert cycles(bad) == [["edgepose.data.base", "edgepose.exporting.card"]]


def test_the_runtime_is_torch_free_and_self_contained():
    """``edgepose.runtime`` ships alone (numpy + onnxruntime): it imports only errors and interrupt."""
    graph = _graph()
    outside = {b for a, bs in graph.items() if a.startswith("edgepose.runtime") for b in bs
               if not b.startswith("edgepose.runtime")}
    assert outside <= {"edgepose.errors", "edgepose.interrupt"}
    third_party = set()
    for name, path in _modules().items():
        if name.startswith("edgepose.runtime"):
            third_party |= {m.split(".")[0] for m in _runtime_imports(path, name)}
    assert not third_party & {"torch", "onnx", "scipy", "matplotlib", "click", "safetensors"}


def test_no_module_is_a_grab_bag():
    long = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("reach", ["functions", "types"])
def test_reaching_the_api_loads_no_heavy_library(reach):
    """``import edgepose as ep`` and ``ep.<name>`` (without calling) import no torch, onnx or onnxruntime."""
    code = ("import sys, edgepose as ep\n"
            f"names = [n for n in ep.__all__ if n != '__version__' and (n[0].islower()) == {reach == 'functions'}]\n"
            "assert names, 'nothing to reach'\n"
            "objs = [getattr(ep, n) for n in names]\n"
            "assert all(callable(o) for o in objs)\n"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'scipy', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_starting_the_cli_loads_no_runtime():
    """The ``edgepose`` command (and every forked synthetic-data worker, which inherits it) starts
    without torch, onnx or onnxruntime; a command imports them when it runs."""
    code = ("import sys, edgepose.cli.main, edgepose.pipeline\n"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_api_functions_are_not_shadowed_by_modules():
    """Importing every package leaves ``ep.export`` (and friends) the API function, not a module."""
    import importlib
    import types

    import edgepose as ep

    for name in _modules():
        if not name.endswith("__main__"):
            importlib.import_module(name)
    for name in ep.__all__:
        if name[0].islower() and name != "__version__":
            assert not isinstance(getattr(ep, name), types.ModuleType), name
            assert getattr(ep, name).__module__ == "edgepose.api", name
