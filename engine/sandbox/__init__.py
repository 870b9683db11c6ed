"""The Jupyter-kernel Python sandbox (see docs/sandbox.md).

Names are loaded lazily: the kernel imports ``engine.sandbox.helpers`` at start,
and that must not pull in the engine side (zmq sockets, psutil, events).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.sandbox.helpers import METRIC_MIME, log_metric
    from engine.sandbox.kernel import RESTART_ADVICE, ExecResult, Sandbox, SandboxError
    from engine.sandbox.tool import python_expression_tool
    from engine.sandbox.truncate import truncate_middle

_EXPORTS = {
    "Sandbox": "engine.sandbox.kernel",
    "ExecResult": "engine.sandbox.kernel",
    "SandboxError": "engine.sandbox.kernel",
    "RESTART_ADVICE": "engine.sandbox.kernel",
    "python_expression_tool": "engine.sandbox.tool",
    "log_metric": "engine.sandbox.helpers",
    "METRIC_MIME": "engine.sandbox.helpers",
    "truncate_middle": "engine.sandbox.truncate",
}

__all__ = [
    "METRIC_MIME",
    "RESTART_ADVICE",
    "ExecResult",
    "Sandbox",
    "SandboxError",
    "log_metric",
    "python_expression_tool",
    "truncate_middle",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
