"""The import rules of STYLE.md, checked on the source: imports run one way, Qt only in app/gui,
torch only in converters/, training/, tests/, bench/ and (lazily) the torch backends."""

from __future__ import annotations

import ast
import re
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


# SQL statements as they start in a string literal (upper case, as the store writes them; prose such as
# "Select a photo" is not SQL). f-strings are read with their placeholders as "{}".
SQL_TEXT = re.compile(
    r"\b(SELECT\b[\s\S]*?\bFROM|INSERT\s+(OR\s+[A-Z]+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|(CREATE|DROP)\s+(UNIQUE\s+|VIRTUAL\s+)?(TABLE|INDEX|TRIGGER|VIEW)|ALTER\s+TABLE|PRAGMA\s+\w+"
    r"|^\s*(BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED))?|COMMIT|ROLLBACK|VACUUM)\s*$)\b"
)
SQL_CALLS = {"execute", "executemany", "executescript"}


def _is_store_module(path: Path) -> bool:
    return path.parent == ROOT / "app" / "core" and (path.stem == "store" or path.stem.startswith("store_"))


def _sql_in(path: Path) -> list[str]:
    """`line: text` for each string literal holding SQL and each call running SQL on a connection
    (docstrings are prose and are skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    inside_fstrings = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            if id(n) in docs or id(n) in inside_fstrings:
                continue
            text = n.value
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS:
            out.append(f"{n.lineno}: .{n.func.attr}(...)")
            continue
        else:
            continue
        if SQL_TEXT.search(text):
            out.append(f"{n.lineno}: {' '.join(text.split())[:60]}")
    return out


@pytest.mark.parametrize("path", [p for p in _py_files("app") if not _is_store_module(p)], ids=_rel)
def test_sql_lives_only_in_the_store(path: Path) -> None:
    """Every SQL statement is in app/core/store.py or a store_*.py module (doctor and salvage reach
    SQLite through store_repair); nothing else runs SQL on a connection."""
    bad = _sql_in(path)
    assert not bad, f"SQL outside the store in {_rel(path)}: {bad}"


def test_the_sql_check_catches_planted_sql(tmp_path):
    """The checker itself: statements in plain strings, f-strings and calls are found; prose is not."""
    f = tmp_path / "x.py"
    f.write_text(
        '''def f(conn, table):
    """PRAGMA user_version in a docstring is prose."""
    label = "Select a photo"
    a = "SELECT id, path FROM images WHERE status = 'ok'"
    b = f"DELETE FROM {table} WHERE id = ?"
    c = "BEGIN IMMEDIATE"
    d = """INSERT OR IGNORE INTO roots (path) VALUES (?)"""
    e = "PRAGMA query_only = 1"
    conn.executemany(a, [])
'''
    )
    found = [line.split(":")[0] for line in _sql_in(f)]
    assert sorted(found, key=int) == ["4", "5", "6", "7", "8", "9"], _sql_in(f)
    store_like = ROOT / "app" / "core" / "store_views.py"
    assert _is_store_module(store_like) and _sql_in(store_like), "the store's own SQL must be seen"
    assert not _is_store_module(ROOT / "app" / "core" / "salvage.py")
