"""The package layout is the pipeline: stage subpackages whose imports only point down it.

A stage may import the stages before it (``cube`` reads ``store``), never one after it, and
nothing but ``cli`` imports ``lds_dask.cli`` (cf. the contract issue's import rule).
"""

import ast
from pathlib import Path

import lds_dask

PACKAGE = Path(lds_dask.__file__).parent
# Pipeline order: a stage imports only stages listed before it (and itself).
STAGES = ("runtime", "contract", "store", "ingest", "cube", "sdc", "outputs", "refresh", "cli")
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py"}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lds_dask" else None


def _imports(path: Path) -> set[str]:
    """Every lds_dask module a source file imports (at any depth, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("lds_dask.")}


def test_top_level_holds_only_stage_subpackages():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules <= TOP_LEVEL_MODULES, sorted(modules - TOP_LEVEL_MODULES)
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(STAGES)


def test_imports_point_down_the_pipeline_and_never_into_cli():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).parts[0]
        if here not in STAGES:
            continue
        for module in _imports(path):
            there = _stage(module)
            if there in STAGES and STAGES.index(there) > STAGES.index(here):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "\n".join(wrong)
