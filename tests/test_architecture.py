"""The package's structure, checked: sub-packages in one layer order, no import cycle, every
module importable on its own, nothing imported from outside the package but declared
dependencies (the zoo and the benchmark live in the checkout's models/, never in the wheel).

The layer order is the one onnx_udc/__init__.py documents: each sub-package may import
only those before it in LAYERS.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "onnx_udc"

# bottom-up; a unit is a sub-package or a top-level module of onnx_udc
LAYERS = ["errors", "registry", "format", "native", "quantizers", "coders", "codec", "graph", "encoder", "fit",
          "finetune", "pipeline", "load", "cli"]
# third-party imports allowed anywhere (pyproject's dependencies, and protobuf through onnx)
CORE = {"numpy", "onnx", "onnxruntime", "onnx_graphsurgeon", "brotli", "click", "rich", "google"}
# optional extras: only inside a function, so the core install never needs them
OPTIONAL = {"PIL", "torch", "matplotlib"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports guarded at module level (if / try) count as module level
        if isinstance(n, (ast.If, ast.Try)):
            top_level |= {id(c) for c in ast.walk(n)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:  # "from pkg import sub" imports the sub-module pkg.sub
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in MODULES else target, id(node) in top_level))
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "onnx_udc"


def _internal_edges() -> list[tuple[str, str]]:
    return [(m, t) for m in MODULES for t, _ in _imports(m) if t == "onnx_udc" or t.startswith("onnx_udc.")]


def test_every_unit_is_in_the_layer_order():
    units = {_unit(m) for m in MODULES} - {"onnx_udc"}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS (and to onnx_udc/__init__.py)"


def test_sub_packages_import_only_layers_below_them():
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for src, dst in _internal_edges():
        a, b = _unit(src), _unit(dst)
        if a == "onnx_udc" or a == b:
            continue  # the top-level __init__ re-exports everything
        if b == "onnx_udc":
            bad.append(f"{src} imports the top-level package (import the sub-package instead)")
        elif rank[b] > rank[a]:
            bad.append(f"{src} ({a}) imports {dst} ({b}), a higher layer")
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for src, dst in _internal_edges():
        if dst in graph and dst != src:
            graph[src].add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_nothing_from_outside_the_package():
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for module in MODULES:
        for name, top in _imports(module):
            root = name.split(".")[0]
            if root in ("onnx_udc", "__future__") or root in stdlib or root in CORE:
                continue
            if root in OPTIONAL and not top:
                continue
            bad.append(f"{module}: import {name}" + (" at module level (optional extra)" if root in OPTIONAL else ""))
    assert not bad, "\n".join(bad)


def test_every_module_imports_on_its_own():
    """A fresh interpreter per module (cwd outside the checkout): an import cycle that bites
    only for one entry point, or a missing import, fails here."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def load(module: str) -> tuple[str, int, str]:
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                              cwd="/", env=env, timeout=120)
        return module, done.returncode, done.stderr.strip().splitlines()[-1:] and done.stderr.strip().splitlines()[-1]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(load, sorted(m for m in MODULES if not m.endswith("__main__"))))
    failed = [f"{m}: {err}" for m, code, err in results if code]
    assert not failed, "\n".join(failed)


def test_the_extending_page_names_real_files():
    """docs/design/extending.md lists the files a newcomer touches: each must exist."""
    import re

    text = (ROOT / "docs" / "design" / "extending.md").read_text()
    paths = {p for p in re.findall(r"`([A-Za-z0-9_./-]+\.(?:py|h|cc|cu|cmake|md|txt))`", text) if "/" in p or p.endswith(".md")}
    assert len(paths) >= 20, sorted(paths)
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"extending.md names files that do not exist: {missing}"
