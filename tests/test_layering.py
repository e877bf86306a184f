"""The layering rules of DESIGN.md section 1, read from every module's imports (ast, nothing is imported).

- nothing below ui/ imports Qt (PySide6, pyqtgraph);
- io/ imports neither store/ nor torch;
- engine/ and model/ never import training/;
- no layer imports one above it: the neutral modules (errors, paths, prompts, atomic_write, file_hash) < io < model
  < engine < store < training (with the headless commands selftest and bench_runner) < ui < cli.
Imports inside functions count too: a lazy import is still an arrow between layers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "tnseg_desktop"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

RANK = {
    "__init__": 0, "errors": 0, "paths": 0, "prompts": 0, "atomic_write": 0, "file_hash": 0,
    "io": 1,
    "model": 2,
    "engine": 3,
    "store": 4,
    "training": 5, "selftest": 5, "bench_runner": 5,
    "ui": 6,
    "cli": 7, "__main__": 7,
}
QT = {"PySide6", "pyqtgraph", "shiboken6", "PyQt5", "PyQt6"}
TORCH = {"torch", "torchvision"}

# Known exceptions, each with its reason; an arrow listed here that no longer exists fails the test too.
ALLOWED: dict[tuple[str, str], str] = {
    # `models remove` refuses the store's active version: command glue, not model code (issue 21)
    ("model/commands.py", "store"): "the models CLI asks the store which version is in use",
}


@dataclass(frozen=True)
class Arrow:
    module: str  # path relative to the package, e.g. "engine/session.py"
    line: int
    target: str  # top-level import name outside the package, or the layer name inside it


def layer_of(rel: str) -> str:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def arrows(rel: str, source: str) -> list[Arrow]:
    """Every import in one module: external packages by their top-level name, package modules by layer."""
    package_parts = [PACKAGE, *rel.split("/")[:-1]]  # the package a relative import starts from
    out: list[Arrow] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from tnseg_desktop import training` names a layer in the imported names
            names = [f"{module}.{a.name}" for a in node.names] if module == PACKAGE else [module]
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE:
                if len(parts) > 1:
                    out.append(Arrow(rel, node.lineno, parts[1]))
            else:
                out.append(Arrow(rel, node.lineno, parts[0]))
    return out


def violations(rel: str, source: str) -> list[str]:
    src = layer_of(rel)
    found = []
    for a in arrows(rel, source):
        why = None
        if a.target in QT and src not in ("ui",):
            why = "imports Qt below ui/"
        elif src == "io" and a.target in TORCH:
            why = "io/ imports torch"
        elif src == "io" and a.target == "store":
            why = "io/ imports store/"
        elif src in ("engine", "model") and a.target == "training":
            why = f"{src}/ imports training/"
        elif a.target in RANK and src in RANK and RANK[a.target] > RANK[src]:
            why = f"{src} imports the higher layer {a.target}"
        if why is not None and (rel, a.target) not in ALLOWED:
            found.append(f"{rel}:{a.line}: {why} ({a.target})")
    return found


def package_modules() -> dict[str, str]:
    return {p.relative_to(PACKAGE_DIR).as_posix(): p.read_text(encoding="utf-8") for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def test_every_module_belongs_to_a_known_layer():
    unknown = sorted({layer_of(rel) for rel in package_modules()} - set(RANK))
    assert unknown == [], f"add these to RANK in tests/test_layering.py (and DESIGN.md section 1): {unknown}"


def test_no_module_breaks_the_layering():
    found = [v for rel, src in package_modules().items() for v in violations(rel, src)]
    assert found == [], "\n".join(found)


def test_every_allowed_exception_is_still_needed():
    modules = package_modules()
    stale = [key for key in ALLOWED if key[0] not in modules or key[1] not in {a.target for a in arrows(key[0], modules[key[0]])}]
    assert stale == [], f"remove from ALLOWED: {stale}"


@pytest.mark.parametrize(
    "rel, source, expected",
    [
        ("engine/x.py", "from tnseg_desktop.training.clicks import next_click", "engine/ imports training/"),
        ("model/x.py", "def f():\n    from tnseg_desktop.training import data", "model/ imports training/"),
        ("io/x.py", "import torch", "io/ imports torch"),
        ("io/x.py", "from tnseg_desktop.store.maskfiles import MaskFiles", "io/ imports store/"),
        ("io/x.py", "from ..store import AnnotationStore", "io/ imports store/"),
        ("store/x.py", "from PySide6.QtCore import QObject", "imports Qt below ui/"),
        ("training/x.py", "import pyqtgraph as pg", "imports Qt below ui/"),
        ("store/x.py", "from tnseg_desktop import training", "store imports the higher layer training"),
        ("prompts.py", "from tnseg_desktop.engine.refiner_base import Prompts", "prompts imports the higher layer engine"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(rel, source, expected):
    found = violations(rel, source)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "rel, source",
    [
        ("ui/x.py", "from PySide6.QtWidgets import QWidget\nfrom tnseg_desktop.training import versions"),
        ("training/x.py", "from tnseg_desktop.engine.refiner_base import Prompts\nimport torch"),
        ("engine/x.py", "from tnseg_desktop.prompts import Click\nfrom . import mask_ops"),
        ("store/x.py", "from tnseg_desktop.engine.measurements import measure"),
    ],
)
def test_the_checker_allows_downward_arrows(rel, source):
    assert violations(rel, source) == []
