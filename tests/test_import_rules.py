"""The import rules of STYLE.md, checked on the source: imports run one way, Qt only in app/gui,
torch only in converters/, training/, tests/, bench/ and (lazily) the torch backends."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "PyQt5", "PyQt6", "shiboken6"}
TORCH = {"torch", "transformers", "torchvision"}
# `backends/__init__` probes torch about CUDA for `--backend auto` only when an NVIDIA driver is loaded
# and no cached answer exists.
LAZY_TORCH_FILES = {
    "app/core/backends/__init__.py",
    "app/core/backends/torch_backend.py",
    "app/core/backends/torch_captioner.py",
}
STDLIB = set(sys.stdlib_module_names)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, imported at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(n) for n in tree.body}
    # Imports nested in `if TYPE_CHECKING:` / try-blocks at module level still count as module level.
    for n in tree.body:
        if isinstance(n, (ast.If, ast.Try)):
            top_level |= {id(x) for x in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], id(node) in top_level))
    return out


def _py_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*.py"))]


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", _py_files("app", "mlx_models", "converters"), ids=_rel)
def test_qt_is_imported_only_inside_app_gui(path: Path) -> None:
    if _rel(path).startswith("app/gui/"):
        return
    bad = [m for m, _ in _imports(path) if m in QT]
    assert not bad, f"{_rel(path)} imports {bad}: only app/gui may import Qt"


@pytest.mark.parametrize("path", _py_files("app", "mlx_models"), ids=_rel)
def test_torch_stays_out_of_the_runtime_path(path: Path) -> None:
    imports = _imports(path)
    if _rel(path) in LAZY_TORCH_FILES:
        eager = [m for m, top in imports if m in TORCH and top]
        assert not eager, f"{_rel(path)} must import {eager} lazily, inside the functions that need it"
    else:
        bad = [m for m, _ in imports if m in TORCH]
        assert not bad, (
            f"{_rel(path)} imports {bad}: torch belongs to converters/, training/ and the torch backends"
        )


@pytest.mark.parametrize("path", _py_files("mlx_models"), ids=_rel)
def test_mlx_models_import_only_mlx_numpy_and_tokenizers(path: Path) -> None:
    allowed = STDLIB | {
        "mlx",
        "mlx_lm",
        "numpy",
        "tokenizers",
        "sentencepiece",
        "PIL",
        "jinja2",
        "mlx_models",
    }
    bad = sorted({m for m, _ in _imports(path) if m not in allowed})
    assert not bad, f"{_rel(path)} imports {bad}: mlx_models may use only MLX, numpy, tokenizers and Pillow"


@pytest.mark.parametrize("path", _py_files("app/core"), ids=_rel)
def test_core_never_imports_the_cli_or_gui(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mods = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    mods += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    bad = [m for m in mods if m.startswith(("app.cli", "app.gui", "app.commands"))]
    assert not bad, f"{_rel(path)} imports {bad}: core must not depend on its front ends"


@pytest.mark.parametrize("path", _py_files("app/core", "mlx_models"), ids=_rel)
def test_core_never_prints_or_exits(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id
                if isinstance(f, ast.Name)
                else f"{getattr(f.value, 'id', '')}.{f.attr}"
                if isinstance(f, ast.Attribute)
                else ""
            )
            assert name not in {"print", "sys.exit", "exit", "quit", "os._exit"}, (
                f"{_rel(path)}:{node.lineno} calls {name}: only the CLI and GUI print or exit"
            )


# The layering of the app (STYLE.md): (folder, forbidden top-level modules or packages, why).
LAYER_RULES = [
    ("app/core", ("converters", "training"), "core must not depend on converters/ or training/"),
    ("app/gui", ("converters",), "the window converts through core (app.core.model_install)"),
    ("app/gui", ("sqlite3", "sqlite_utils"), "front ends read and write through core's Library"),
    ("app/commands", ("sqlite3", "sqlite_utils"), "front ends read and write through core's Library"),
    ("app/cli.py", ("sqlite3", "sqlite_utils"), "front ends read and write through core's Library"),
]


@pytest.mark.parametrize(
    ("path", "forbidden", "why"),
    [
        (p, forbidden, why)
        for where, forbidden, why in LAYER_RULES
        for p in ([ROOT / where] if where.endswith(".py") else _py_files(where))
    ],
    ids=lambda x: _rel(x) if isinstance(x, Path) else None,
)
def test_layers_import_only_downwards(path: Path, forbidden: tuple[str, ...], why: str) -> None:
    bad = sorted({m for m, _ in _imports(path) if m in forbidden})
    assert not bad, f"{_rel(path)} imports {bad}: {why}"


def test_the_layer_rules_catch_a_violation(tmp_path):
    """The checker itself: a core module importing the converters is flagged."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from converters.convert import convert\n    import sqlite3\n")
    assert {m for m, _ in _imports(f)} == {"converters", "sqlite3"}


def test_front_ends_hold_no_sql():
    """SQL text lives in the store: no SELECT/INSERT/UPDATE/DELETE statements in the CLI or the GUI."""
    import re

    sql = re.compile(
        r"\b(SELECT\s+.+\s+FROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.I
    )
    files = _py_files("app/gui", "app/commands") + [ROOT / "app" / "cli.py"]
    bad = [_rel(p) for p in files if sql.search(p.read_text(encoding="utf-8"))]
    assert not bad, f"SQL statements outside the store: {bad}"
