"""The engine is UI-free: importing any engine module never imports textual or tui."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_BLOCKED_IMPORT = r"""
import importlib.abc, pkgutil, sys, traceback

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("textual", "tui"):
            stack = "".join(traceback.format_stack(limit=12))
            raise ImportError(f"engine imported {name!r}:\n{stack}")
        return None

sys.meta_path.insert(0, Block())
import engine
failed = []
for mod in pkgutil.walk_packages(engine.__path__, "engine."):
    try:
        __import__(mod.name)
    except ImportError as e:
        if "engine imported" in str(e):
            print(f"FAIL {mod.name}: {e}")
            failed.append(mod.name)
        # other import errors (an optional dependency missing) are not this test's business
print("checked", len(list(pkgutil.walk_packages(engine.__path__, "engine."))), "modules")
sys.exit(1 if failed else 0)
"""


def test_engine_modules_import_without_textual_or_tui() -> None:
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked" in proc.stdout


def test_blocker_catches_a_ui_import(tmp_path: Path) -> None:
    """The subprocess check above can fail: a module importing textual is caught."""
    pkg = tmp_path / "engine"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("import textual\n")
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "FAIL engine.bad" in proc.stdout


_UI_IMPORT = re.compile(r"^\s*(from|import)\s+(textual|tui)\b", re.M)


def test_engine_sources_do_not_mention_ui_imports() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
                 if _UI_IMPORT.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
