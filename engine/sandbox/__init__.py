"""The Jupyter-kernel Python sandbox (see docs/sandbox.md).

Names are loaded lazily: the kernel imports ``agentdeck.engine.sandbox.helpers`` at start,
and that must not pull in the engine side (zmq sockets, psutil, events).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentdeck.engine.sandbox.bash_tool import bash_tool
    from agentdeck.engine.sandbox.helpers import METRIC_MIME, log_metric
    from agentdeck.engine.sandbox.kernel import RESTART_ADVICE, ExecResult, Sandbox, SandboxError
    from agentdeck.engine.sandbox.tool import python_expression_tool
    from agentdeck.engine.sandbox.truncate import truncate_middle

_EXPORTS = {
    "Sandbox": "agentdeck.engine.sandbox.kernel",
    "ExecResult": "agentdeck.engine.sandbox.kernel",
    "SandboxError": "agentdeck.engine.sandbox.kernel",
    "RESTART_ADVICE": "agentdeck.engine.sandbox.kernel",
    "python_expression_tool": "agentdeck.engine.sandbox.tool",
    "bash_tool": "agentdeck.engine.sandbox.bash_tool",
    "log_metric": "agentdeck.engine.sandbox.helpers",
    "METRIC_MIME": "agentdeck.engine.sandbox.helpers",
    "truncate_middle": "agentdeck.engine.sandbox.truncate",
}

__all__ = [
    "METRIC_MIME",
    "RESTART_ADVICE",
    "ExecResult",
    "Sandbox",
    "SandboxError",
    "bash_tool",
    "log_metric",
    "python_expression_tool",
    "truncate_middle",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentdeck.engine.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
