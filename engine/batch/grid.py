"""What a batch runs: a grid of tasks x agents/models x ``-T`` values x epochs.

A grid comes from the command line (``agentdeck batch TASK ... --agent A --model M
-T key=v1,v2 --epochs N``) or from a TOML file (``agentdeck batch grid.toml``)::

    name = "haiku-vs-sonnet"    # optional: the batch id (default: made from the grid)
    epochs = 5
    seed_base = 1000            # optional: makes the epochs' seeds repeatable

    [[task]]
    name = "noisy-labels"
    params = { dataset = "digits", noise = ["symmetric", "pairs"] }   # a list is an axis

    [[agent]]
    name = "scripted"

    [[agent]]
    name = "claude"
    models = ["claude-haiku-4-5", "claude-sonnet-4-5"]
    max_tokens = 4096           # also: temperature, stream, cache

    [limits]                    # each run's own limits
    max_steps = 20
    time_limit = 900            # seconds
    token_limit = 2000000
    cost_limit = 2.0            # USD

    [batch]                     # how it runs (command-line flags override these)
    jobs = 2
    executor = "local"          # or "ray"
    address = "auto"            # a Ray cluster (executor = "ray")
    retry = 1
    max_cost = 20.0             # USD, the whole batch
    time_limit = 7200           # seconds, the whole batch
    sandbox = "auto"

``GridSpec.configs()`` expands the grid into configurations (everything but the
epoch); each configuration runs ``epochs`` times. Bad input raises ``GridError``
(a ``UserError``: one line naming the file, line or option; exit code 2).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agentdeck.engine.errors import UserError

#: Agents whose ``--model`` matters (the others ignore it).
MODEL_AGENTS = ("claude",)
#: Options of a Claude agent a grid may set (TOML key -> ClaudeAgent keyword).
AGENT_OPTIONS = {"max_tokens": int, "temperature": float, "stream": bool, "cache": bool}


class GridError(UserError):
    """A grid that cannot be run (a TOML error, an unknown key, an empty axis...)."""


class ConfigSpec(msgspec.Struct, kw_only=True, frozen=True):
    """One configuration of the grid: a task, an agent/model and its ``-T`` values."""

    id: str
    task: str
    agent: str
    model: str | None = None
    #: ``-T`` values as typed (strings), without the epoch's seed.
    params: dict[str, str] = msgspec.field(default_factory=dict)
    agent_options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def agent_model(self) -> str:
        return f"{self.agent}/{self.model}" if self.model else self.agent

    def label(self, varying: set[str] | None = None) -> str:
        """``task agent[/model] k=v ...`` (only the keys in ``varying``, when given)."""
        shown = [f"{k}={v}" for k, v in self.params.items() if varying is None or k in varying]
        return " ".join([self.task, self.agent_model, *shown])


@dataclass
class RunLimits:
    """The limits of each run of the batch (the ``agentdeck run`` flags)."""

    max_steps: int | None = None
    time_limit_s: float | None = None
    token_limit: int | None = None
    cost_limit_usd: float | None = None


@dataclass
class BatchSettings:
    """How a batch runs; None: not set (the command line's default or the file's)."""

    name: str | None = None
    jobs: int | None = None
    executor: str | None = None
    address: str | None = None
    retry: int | None = None
    max_cost_usd: float | None = None
    time_limit_s: float | None = None
    sandbox: str | None = None

    def merged(self, over: BatchSettings) -> BatchSettings:
        """These settings with every value ``over`` sets replacing ours."""
        out = BatchSettings(**vars(self))
        for k, v in vars(over).items():
            if v is not None:
                setattr(out, k, v)
        return out


@dataclass
class TaskAxis:
    name: str
    #: -T key -> the values it takes (one value: fixed; more: an axis of the grid).
    params: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class AgentAxis:
    name: str
    models: list[str | None] = field(default_factory=lambda: [None])
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class GridSpec:
    tasks: list[TaskAxis]
    agents: list[AgentAxis]
    epochs: int = 1
    seed_base: int | None = None
    limits: RunLimits = field(default_factory=RunLimits)
    #: Where the grid came from, for messages: "the command line" or a file path.
    source: str = "the command line"

    def configs(self) -> list[ConfigSpec]:
        """Every configuration, in the order: task, its -T values, agent, model."""
        out: list[ConfigSpec] = []
        for t in self.tasks:
            keys = list(t.params)
            for values in itertools.product(*(t.params[k] for k in keys)):
                params = dict(zip(keys, values, strict=True))
                for a in self.agents:
                    for m in a.models:
                        out.append(
                            ConfigSpec(
                                id=f"c{len(out) + 1}",
                                task=t.name,
                                agent=a.name,
                                model=m,
                                params=params,
                                agent_options=dict(a.options),
                            )
                        )
        return out

    def varying_keys(self) -> set[str]:
        """The -T keys that take more than one value (what tells configurations apart)."""
        return {k for t in self.tasks for k, vs in t.params.items() if len(vs) > 1}

    def fingerprint(self) -> str:
        """A short hash of what the grid runs (not how): the same grid, the same batch."""
        body = {
            "configs": [msgspec.to_builtins(c) for c in self.configs()],
            "epochs": self.epochs,
            "seed_base": self.seed_base,
            "limits": vars(self.limits),
        }
        return hashlib.sha256(msgspec.json.encode(body)).hexdigest()[:8]

    def check(self) -> None:
        where = self.source
        if not self.tasks:
            raise GridError("empty grid: no task", where=where, fix="name at least one task")
        if not self.agents:
            raise GridError("empty grid: no agent", where=where)
        if self.epochs < 1:
            raise GridError(
                f"empty grid: epochs must be at least 1, got {self.epochs}",
                where="--epochs" if where == "the command line" else where,
            )
        for t in self.tasks:
            for k, vs in t.params.items():
                if not vs:
                    raise GridError(
                        f"empty grid: -T {k} has no values (task {t.name})",
                        where=where,
                        fix=f"give {k} at least one value or leave it out",
                    )
        if self.seed_base is not None and self.seed_base < 0:
            raise GridError(f"seed_base must be >= 0, got {self.seed_base}", where=where)


# -- the command line -------------------------------------------------------------------


def split_values(text: str) -> list[str]:
    """``a,b,c`` -> ["a", "b", "c"]; ``\\,`` is a comma inside a value."""
    parts = re.split(r"(?<!\\),", text)
    return [p.replace("\\,", ",").strip() for p in parts]


def parse_cli_params(items: list[str]) -> dict[str, list[str]]:
    """``-T key=v1,v2`` items -> {key: [v1, v2]}; a repeated key adds values."""
    out: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise GridError(
                "expected key=value or key=v1,v2 (e.g. -T noise=symmetric,pairs)",
                where=f"-T {item}",
            )
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise GridError("the key is empty", where=f"-T {item}")
        values = split_values(v)
        if any(x == "" for x in values) and len(values) > 1:
            raise GridError("an empty value in the list", where=f"-T {item}")
        for x in values:
            if x not in out.setdefault(k, []):
                out[k].append(x)
    return out


def grid_from_cli(
    tasks: list[str],
    *,
    agents: list[str],
    models: list[str],
    params: list[str],
    epochs: int,
    seed_base: int | None,
    limits: RunLimits,
    agent_options: dict[str, Any],
) -> GridSpec:
    """The grid the command line describes (``--agent`` / ``--model`` repeatable)."""
    axes = parse_cli_params(params)
    agent_names = _unique(agents) or ["scripted"]
    model_list: list[str | None] = list(_unique(models)) or [None]
    if models and not any(_takes_model(a) for a in agent_names):
        raise GridError(
            f"--model {models[0]} applies to --agent {' / '.join(MODEL_AGENTS)} only",
            where="--model",
            fix="add --agent claude",
        )
    agent_axes = [
        AgentAxis(
            a,
            models=model_list if _takes_model(a) else [None],
            options=dict(agent_options) if _takes_model(a) else {},
        )
        for a in agent_names
    ]
    grid = GridSpec(
        tasks=[TaskAxis(t, {k: list(v) for k, v in axes.items()}) for t in _unique(tasks)],
        agents=agent_axes,
        epochs=epochs,
        seed_base=seed_base,
        limits=limits,
    )
    grid.check()
    return grid


def _takes_model(agent: str) -> bool:
    return agent in MODEL_AGENTS


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -- the TOML file ----------------------------------------------------------------------

_TOP_KEYS = ("name", "epochs", "seed_base", "task", "agent", "limits", "batch")
_TASK_KEYS = ("name", "params")
_AGENT_KEYS = ("name", "model", "models", *AGENT_OPTIONS)
_LIMIT_KEYS = ("max_steps", "time_limit", "token_limit", "cost_limit")
_BATCH_KEYS = ("jobs", "executor", "address", "retry", "max_cost", "time_limit", "sandbox")


def read_toml(path: Path) -> tuple[GridSpec, BatchSettings]:
    """A grid file; ``GridError`` naming the line (syntax) or the table and key."""
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise GridError(f"cannot read the grid file: {e.strerror}", where=where) from e
    except UnicodeDecodeError as e:
        raise GridError("the grid file is not UTF-8 text", where=where) from e
    except tomllib.TOMLDecodeError as e:
        raise GridError(_toml_message(e), where=where, fix="fix the TOML syntax") from e
    return grid_from_dict(data, where)


def _toml_message(e: tomllib.TOMLDecodeError) -> str:
    msg = str(e)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    if m:
        return f"line {m.group(1)}, column {m.group(2)}: TOML syntax error: {msg[: m.start()]}"
    m = re.search(r"\s*\(at end of document\)$", msg)
    if m:
        return f"at the end of the file: TOML syntax error: {msg[: m.start()]}"
    return f"TOML syntax error: {msg}"


def grid_from_dict(data: dict[str, Any], where: str) -> tuple[GridSpec, BatchSettings]:
    _known(data, _TOP_KEYS, where, "the top level")
    tasks_raw = _tables(data.get("task"), where, "task")
    if not tasks_raw:
        raise GridError(
            "empty grid: no [[task]] table", where=where, fix='add [[task]] with name = "..."'
        )
    tasks: list[TaskAxis] = []
    for i, t in enumerate(tasks_raw, 1):
        place = f"[[task]] #{i}"
        _known(t, _TASK_KEYS, where, place)
        name = _string(t.get("name"), where, f"{place} name", required=True)
        assert name is not None
        params_raw = t.get("params", {})
        if not isinstance(params_raw, dict):
            raise GridError(f"{place} params: expected a table of -T values", where=where)
        params = {str(k): _values(v, where, f"{place} params.{k}") for k, v in params_raw.items()}
        tasks.append(TaskAxis(name, params))
    agents: list[AgentAxis] = []
    for i, a in enumerate(_tables(data.get("agent"), where, "agent"), 1):
        place = f"[[agent]] #{i}"
        _known(a, _AGENT_KEYS, where, place)
        name = _string(a.get("name"), where, f"{place} name", required=True)
        assert name is not None
        models: list[str | None]
        if "model" in a and "models" in a:
            raise GridError(f"{place}: give model or models, not both", where=where)
        if "models" in a:
            models = list(_values(a["models"], where, f"{place} models"))
            if not models:
                raise GridError(f"empty grid: {place} models is empty", where=where)
        elif "model" in a:
            models = [_string(a["model"], where, f"{place} model")]
        else:
            models = [None]
        if models != [None] and not _takes_model(name):
            raise GridError(f"{place}: a model applies to agent claude only", where=where)
        options: dict[str, Any] = {}
        for key, kind in AGENT_OPTIONS.items():
            if key in a:
                options[key] = _typed(a[key], kind, where, f"{place} {key}")
        agents.append(AgentAxis(name, models=models, options=options))
    if not agents:
        agents = [AgentAxis("scripted")]
    limits_raw = data.get("limits", {})
    if not isinstance(limits_raw, dict):
        raise GridError("limits: expected a table [limits]", where=where)
    _known(limits_raw, _LIMIT_KEYS, where, "[limits]")
    limits = RunLimits(
        max_steps=_opt(limits_raw, "max_steps", int, where, "[limits]"),
        time_limit_s=_opt(limits_raw, "time_limit", float, where, "[limits]"),
        token_limit=_opt(limits_raw, "token_limit", int, where, "[limits]"),
        cost_limit_usd=_opt(limits_raw, "cost_limit", float, where, "[limits]"),
    )
    batch_raw = data.get("batch", {})
    if not isinstance(batch_raw, dict):
        raise GridError("batch: expected a table [batch]", where=where)
    _known(batch_raw, _BATCH_KEYS, where, "[batch]")
    settings = BatchSettings(
        name=_string(data.get("name"), where, "name"),
        jobs=_opt(batch_raw, "jobs", int, where, "[batch]"),
        executor=_string(batch_raw.get("executor"), where, "[batch] executor"),
        address=_string(batch_raw.get("address"), where, "[batch] address"),
        retry=_opt(batch_raw, "retry", int, where, "[batch]"),
        max_cost_usd=_opt(batch_raw, "max_cost", float, where, "[batch]"),
        time_limit_s=_opt(batch_raw, "time_limit", float, where, "[batch]"),
        sandbox=_string(batch_raw.get("sandbox"), where, "[batch] sandbox"),
    )
    epochs = _typed(data.get("epochs", 1), int, where, "epochs")
    seed_base = _opt(data, "seed_base", int, where, "the top level")
    grid = GridSpec(
        tasks=tasks,
        agents=agents,
        epochs=epochs,
        seed_base=seed_base,
        limits=limits,
        source=where,
    )
    grid.check()
    return grid, settings


def _known(table: dict[str, Any], keys: tuple[str, ...], where: str, place: str) -> None:
    for k in table:
        if k not in keys:
            import difflib

            close = difflib.get_close_matches(k, keys, n=1)
            raise GridError(
                f"{place}: unknown key {k!r} (known: {', '.join(keys)})",
                where=where,
                fix=f"did you mean {close[0]!r}?" if close else None,
            )


def _tables(value: Any, where: str, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(x, dict) for x in value):
        return value
    raise GridError(f"{name}: expected [[{name}]] tables", where=where)


def _string(value: Any, where: str, place: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise GridError(f"{place}: missing", where=where)
        return None
    if not isinstance(value, str) or not value.strip():
        raise GridError(f"{place}: expected a non-empty string, got {value!r}", where=where)
    return value.strip()


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _values(value: Any, where: str, place: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for x in items:
        text = _scalar_text(x)
        if text is None:
            raise GridError(
                f"{place}: expected a string, number or boolean (or a list of them), got {x!r}",
                where=where,
            )
        if text not in out:
            out.append(text)
    return out


def _typed(value: Any, kind: type, where: str, place: str) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and is_number and isinstance(value, int):
        return value
    if kind is float and is_number:
        return float(value)
    names = {bool: "true or false", int: "an integer", float: "a number"}
    raise GridError(f"{place}: expected {names[kind]}, got {value!r}", where=where)


def _opt(table: dict[str, Any], key: str, kind: type, where: str, place: str) -> Any:
    if key not in table:
        return None
    return _typed(table[key], kind, where, f"{place} {key}")


__all__ = [
    "AgentAxis",
    "BatchSettings",
    "ConfigSpec",
    "GridError",
    "GridSpec",
    "RunLimits",
    "TaskAxis",
    "grid_from_cli",
    "grid_from_dict",
    "parse_cli_params",
    "read_toml",
    "split_values",
]
