"""Import hygiene: no import cycles, every module importable alone, a light ``import tfxai``."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tfxai"
OPTIONAL = {"tfxai.integrations"}
"""Module prefixes that need optional extras (imported only when those are installed)."""


def _module_names() -> list:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _module_names()


def _resolve(name: str) -> str | None:
    """The tfxai module an imported dotted name lands in (``None`` outside tfxai)."""
    if name != "tfxai" and not name.startswith("tfxai."):
        return None
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> set:
    """Every tfxai module ``module`` imports, at module level or inside functions."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            for alias in node.names:
                found.add(_resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else _resolve(base))
    found.discard(None)
    found.discard(module)
    return found


def _cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return result


def test_the_import_graph_has_no_cycle():
    # Edges to the package roots are left out: importing ``tfxai.x`` runs
    # ``tfxai/__init__.py``, which imports nothing eagerly (its names load on use).
    graph = {m: {d for d in _imports(m) if d != "tfxai"} for m in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _run(code: str):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_import_tfxai_loads_neither_tensorflow_nor_matplotlib():
    result = _run(
        "import sys, tfxai; print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_importing_tfxai_leaves_the_tensorflow_logger_alone():
    code = (
        "import tensorflow as tf; before = list(tf.get_logger().filters); "
        "import tfxai, tfxai.analyzers, tfxai.rules; "
        "print(list(tf.get_logger().filters) == before)"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.slow
@pytest.mark.parametrize("module", [m for m in MODULES if not m.startswith(tuple(OPTIONAL))])
def test_every_module_imports_alone_in_a_fresh_process(module):
    result = _run(f"import {module}")
    assert result.returncode == 0, result.stderr
