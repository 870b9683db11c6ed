"""The layers hold at import time: importing any engine module never imports textual,
agentdeck.tui or agentdeck.tasks (import-linter checks the static imports in CI; this
checks what modules actually pull in when they run), and every package folder is
installed under the one ``agentdeck`` namespace."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_BLOCKED_IMPORT = r"""
import importlib.abc, pkgutil, sys, traceback

BLOCKED = tuple(sys.argv[1].split(","))
PACKAGE = sys.argv[2]

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            stack = "".join(traceback.format_stack(limit=12))
            raise ImportError(f"{PACKAGE} imported {name!r}:\n{stack}")
        return None

sys.meta_path.insert(0, Block())
pkg = __import__(PACKAGE, fromlist=["_"])
failed = []
mods = list(pkgutil.walk_packages(pkg.__path__, PACKAGE + "."))
for mod in mods:
    try:
        __import__(mod.name)
    except ImportError as e:
        if f"{PACKAGE} imported" in str(e):
            print(f"FAIL {mod.name}: {e}")
            failed.append(mod.name)
        # other import errors (an optional dependency missing) are not this test's business
print("checked", len(mods), "modules")
sys.exit(1 if failed else 0)
"""


def _check(package: str, blocked: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, blocked, package],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_engine_modules_import_neither_textual_nor_tui_nor_tasks() -> None:
    proc = _check("agentdeck.engine", "textual,agentdeck.tui,agentdeck.tasks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked" in proc.stdout


def test_task_modules_do_not_import_the_ui() -> None:
    proc = _check("agentdeck.tasks", "textual,agentdeck.tui")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_blocker_catches_a_forbidden_import() -> None:
    """The subprocess check above can fail: the engine importing tasks is caught."""
    proc = _check("agentdeck.engine", "agentdeck.engine.events")
    assert proc.returncode == 1 and "FAIL agentdeck.engine." in proc.stdout


_UI_IMPORT = re.compile(r"^\s*(from|import)\s+(textual|agentdeck\.tui|agentdeck\.tasks)\b", re.M)


def test_engine_sources_do_not_mention_ui_or_task_imports() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "engine").rglob("*.py")
        if _UI_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# -- the one namespace --------------------------------------------------------------------


def _package_folders() -> set[str]:
    out = set()
    for top in ("engine", "tasks", "tui"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            out.add("agentdeck." + ".".join(rel.parts))
    return out


def test_every_package_folder_is_listed_for_installation() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(cfg["tool"]["setuptools"]["packages"])
    assert listed == _package_folders()


def test_every_package_folder_is_installed_and_imports_from_elsewhere(tmp_path: Path) -> None:
    """From a directory holding an agent's own ``engine.py``, ``tasks.py`` and ``tui.py``,
    every agentdeck package imports (and the agent's modules stay the agent's)."""
    for name in ("engine", "tasks", "tui"):
        (tmp_path / f"{name}.py").write_text(f"WHO = 'agent {name}'\n")
    code = (
        "import importlib, sys\n"
        f"for name in {sorted(_package_folders())!r}:\n"
        "    importlib.import_module(name)\n"
        "import engine, tasks, tui\n"
        "print(engine.WHO, tasks.WHO, tui.WHO)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "agent engine agent tasks agent tui"


def test_only_agentdeck_is_a_top_level_name() -> None:
    from importlib.metadata import distribution

    dist = distribution("agentdeck")
    top = (dist.read_text("top_level.txt") or "").split()
    assert top == ["agentdeck"]


def test_a_runs_host_info_names_torch_without_importing_it() -> None:
    """run_start.host records torch's version and the GPUs, but the engine process never
    imports torch for it (about 2 s of CPU and 300 MB a run, for a version string)."""
    from importlib.metadata import version

    code = (
        "import sys, json; from agentdeck.engine.run import host_info; h = host_info(); "
        "print(json.dumps([h.get('torch'), 'torch' in sys.modules, h['gpus']]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    torch_version, imported, gpus = json.loads(proc.stdout)
    assert torch_version == version("torch") and imported is False
    assert isinstance(gpus, list)
