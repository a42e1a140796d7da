"""The package's import graph: no circle between modules, no module importing another's private names.

Two checks:
- static: every ``import`` / ``from ... import`` in src/ (at module level, inside functions
  and under ``TYPE_CHECKING`` alike) becomes an edge between modules (a submodule import also
  imports its parent packages); the graph must have no cycle, and no name starting with a
  single underscore may be imported from another module;
- dynamic: in a fresh interpreter, every module of the package is imported first, with all
  of ``napari_ois`` dropped from ``sys.modules`` before the next, so an order-dependent
  circular import cannot hide behind an earlier import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is_package) of every module under src/napari_ois."""
    out = {}
    for path in sorted((SRC / "napari_ois").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def _imports(modules):
    """(edges: module -> set of modules, private: list of (importer, module, name))."""
    edges = {m: set() for m in modules}
    private = []
    for name, (path, package) in modules.items():
        here = name if package else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("napari_ois"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges[name].add(sub)
                    elif target in modules:
                        edges[name].add(target)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            private.append((name, target, alias.name))
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in modules)
    for name in edges:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        for target in list(edges[name]):
            parts = target.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in modules and not name.startswith(parent + ".") and parent != name:
                    edges[name].add(parent)
    return edges, private


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_planted_cycle_and_a_private_import(tmp_path):
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    (tmp_path / "a.py").write_text("def f():\n    from .b import _hidden\n")
    (tmp_path / "b.py").write_text("from napari_ois import a\n")
    (tmp_path / "init.py").write_text("")
    modules = {"napari_ois": (tmp_path / "init.py", True), "napari_ois.a": (tmp_path / "a.py", False),
               "napari_ois.b": (tmp_path / "b.py", False)}
    edges, private = _imports(modules)
    assert private == [("napari_ois.a", "napari_ois.b", "_hidden")]
    assert _cycles(edges) == [["napari_ois.a", "napari_ois.b"]]  # a function-level import counts


def test_src_has_no_import_cycle_and_no_private_import():
    modules = _modules()
    assert "napari_ois.core.session" in modules and "napari_ois.model.segmenter" in modules
    edges, private = _imports(modules)
    assert sum(len(e) for e in edges.values()) > 150  # the parser saw the real graph
    assert _cycles(edges) == []
    assert private == []


def test_core_never_imports_the_model_or_the_gui():
    edges, _ = _imports(_modules())
    core = {m: e for m, e in edges.items() if m.startswith("napari_ois.core")}
    reached = {t for e in core.values() for t in e}
    assert not {t for t in reached if t.startswith(("napari_ois.model", "napari_ois._widgets", "napari_ois.train"))}


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = [m for m in _modules() if not m.startswith("napari_ois._widgets")]
    # The widgets need Qt and napari: imported last, once, after the core ones.
    widgets = [m for m in _modules() if m.startswith("napari_ois._widgets")]
    script = (
        "import importlib, sys\n"
        f"names = {names + widgets!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m == 'napari_ois' or m.startswith('napari_ois.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed) or 'ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout
