"""No module of the package or the tests refers to a path outside the repository.

A fresh clone (what .ci/run tests) has nothing beside it, so a path that climbs out of the
checkout, such as ``Path(__file__).parents[2].parent / "shared"``, stops collection for
every user who clones the project. This reads the syntax of every Python source (docstrings
and comments may mention such a path; code may not) and flags:

- a string literal with a ``..`` or a ``shared`` path component: a path string holding one
  (``"../shared/x"``), or the bare word as an operand of ``/`` (``root / ".."``);
- a ``Path(__file__)`` chain, directly or through a module-level name bound to one, whose
  ``.parent`` / ``.parents[n]`` steps climb above the repository root.

It cannot see a path put together at run time from other values (an environment variable,
``os.path.dirname``); the fresh clone in .ci/run is the check for those.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("lds_dask", "synthetic_gen", "bench", "tests")
OUTSIDE_COMPONENTS = {"..", "shared"}


def docstring_ids(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def climb(node: ast.AST, names: dict[str, int]) -> int | None:
    """Directories an expression climbs from its file, or None if it does not start there."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Call):
        func, args = node.func, node.args
        if isinstance(func, ast.Name) and func.id == "Path" and args:
            return 0 if isinstance(args[0], ast.Name) and args[0].id == "__file__" else None
        if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute"):
            return climb(func.value, names)
        return None
    steps, inner = 0, None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        steps, inner = 1, node.value
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
        index = node.slice
        if node.value.attr == "parents" and isinstance(index, ast.Constant):
            steps, inner = index.value + 1, node.value.value
    below = climb(inner, names) if inner is not None else None
    return None if below is None else below + steps


def outside_paths(source: str, depth: int) -> list[str]:
    """What in ``source`` (a file ``depth`` path parts below the root) points outside."""
    tree = ast.parse(source)
    names: dict[str, int] = {}
    for stmt in tree.body:  # module-level names bound to a climb, in order
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, steps = stmt.targets[0], climb(stmt.value, names)
            if isinstance(target, ast.Name) and steps is not None:
                names[target.id] = steps
    docstrings, found = docstring_ids(tree), []
    joined = {
        id(side)
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
        for side in (node.left, node.right)
    }
    for node in ast.walk(tree):
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and id(node) not in docstrings:
            parts = re.split(r"[/\\]", text)
            if OUTSIDE_COMPONENTS & set(parts) and (len(parts) > 1 or id(node) in joined):
                found.append(f"line {node.lineno}: string {text!r}")
        steps = climb(node, names) if isinstance(node, ast.expr) else None
        if steps is not None and steps > depth:
            found.append(f"line {node.lineno}: climbs {steps} levels from a file {depth} deep")
    return sorted(set(found))


def test_no_source_refers_to_a_path_outside_the_repository():
    files = sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py"))
    assert len(files) > 100  # the scan really reads the project
    found = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if (hits := outside_paths(p.read_text(encoding="utf-8"), len(p.relative_to(ROOT).parts)))
    }
    assert not found, found


def test_the_guard_flags_the_paths_that_broke_a_fresh_clone():
    old = (
        '"""Docstrings may say ../shared."""\n'
        "from pathlib import Path\n"
        "REPO_ROOT = Path(__file__).resolve().parents[2]\n"
        'DATA = REPO_ROOT.parent / "shared" / "validation"\n'
        'UP = Path(__file__).parent / "../data"\n'
    )
    hits = outside_paths(old, depth=3)
    assert hits == [
        "line 4: climbs 4 levels from a file 3 deep",
        "line 4: string 'shared'",
        "line 5: string '../data'",
    ]
    fixed = 'from pathlib import Path\nDATA = Path(__file__).parents[1] / "data" / "shared_x"\n'
    assert outside_paths(fixed, depth=3) == []
