"""Tasks a user writes as a folder, without touching agentdeck's code (docs/tasks.md).

A task folder holds:

- ``task.toml``: name, description, kind (``repo`` or ``notebook``), tools, budgets
  (steps, time, one tool call), resources, the ``-T`` parameters, the metric and its
  direction, the pass rule, the submission, the data preparation entry point and an
  optional reference policy;
- ``description.md``: the prompt, with ``{{ name }}`` placeholders for parameters and
  for what ``prepare`` reports;
- ``prepare.py``: ``prepare(ctx)`` writes the public data into ``ctx.public`` (mounted
  read-only in the sandbox at ``.agentdeck_data``) and returns the private answers,
  which stay in the engine process;
- ``grade.py``: ``grade(submission, answers, ctx)`` returns the metrics (a dict, or
  ``(metrics, details)``) and raises ``SubmissionError`` with a message the agent can
  act on for an invalid submission. Optional: ``perfect_submission(answers, path)``
  (``agentdeck task check`` grades it), ``broken_submissions(answers, folder)`` and
  ``reveal(answers, artifacts)`` (called when the run ends).

``load_folder_task(path)`` turns a folder into an ``agentdeck.engine.task.Task``;
``folder_task_class(path)`` makes a class of it for the ``agentdeck.tasks`` entry-point
group (the built-in ``fmnist-repo`` is registered so); ``check_folder(path)`` is
``agentdeck task check``. Every fault of a folder is a ``TaskFolderError`` naming the
file, the key and what is expected.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
import shutil
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from agentdeck.engine.errors import UserError
from agentdeck.engine.events import Artifact, Event, Grade, Metric
from agentdeck.engine.grader import (
    AllOf,
    AnyOf,
    Rule,
    SubmissionError,
    Threshold,
    evaluate,
    resolve_submission,
)
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox.isolation import DATA_DIR_NAME
from agentdeck.engine.task import (
    Param,
    ProgressFn,
    Resources,
    ScriptedStep,
    Task,
    TaskInstance,
    TaskParamError,
    parse_bool,
)
from agentdeck.engine.tools import ToolContext, ToolOutcome, ToolSpec

TASK_FILE = "task.toml"
KINDS = ("repo", "notebook")
#: Tool names a task.toml may list (the submit tool is always added).
TOOL_NAMES = ("bash", "str_replace_based_edit_tool", "python_expression")
TOOL_ALIASES = {"editor": "str_replace_based_edit_tool", "python": "python_expression"}
DEFAULT_TOOLS = {
    "repo": ("bash", "str_replace_based_edit_tool"),
    "notebook": ("python_expression",),
}
#: The default pattern of a self-reported validation metric (MLE-bench's convention).
SELF_REPORT = r"Final Validation Metric:\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PARAM_TYPES = ("str", "int", "float", "bool")


class TaskFolderError(UserError):
    """A task folder that cannot be used: ``where`` is the file (and key), ``what`` the
    fault, ``fix`` what to write instead."""


# -- what prepare and grade get -----------------------------------------------------------


@dataclass
class PrepareContext:
    """What ``prepare(ctx)`` gets."""

    #: The ``-T`` parameters, typed, defaults filled in.
    params: dict[str, Any]
    #: Where to write the public data (the sandbox sees it read-only at ``.agentdeck_data``).
    public: Path
    #: The task folder (for files shipped with the task).
    folder: Path
    progress: ProgressFn | None = None
    #: Values for ``{{ placeholders }}`` of description.md (sizes, class names, ...).
    facts: dict[str, Any] = field(default_factory=dict)
    #: Files and folders the sandbox must not read (the labelled source of the data).
    hidden: list[Path] = field(default_factory=list)

    def hide(self, *paths: str | Path) -> None:
        """Mask these paths in the sandbox (the data source the answers come from)."""
        self.hidden.extend(Path(p).expanduser().resolve() for p in paths)

    def report(self, what: str, done: int, total: int | None = None) -> None:
        """Progress of a slow preparation (shown as a progress bar)."""
        if self.progress is not None:
            self.progress(what, done, total)


@dataclass
class GradeContext:
    """What ``grade(submission, answers, ctx)`` gets."""

    params: dict[str, Any]
    #: The public data folder (what the agent saw).
    public: Path
    folder: Path


# -- task.toml ----------------------------------------------------------------------------


@dataclass
class ParamSpec:
    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    optional: bool = False
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None
    #: The default as task.toml spells it ("all", "auto").
    default_text: str | None = None

    def parse(self, text: str) -> Any:
        t = text.strip()
        if self.optional and t.lower() in ("", "none", "all", "auto"):
            return None
        if self.type == "int":
            v: Any = int(t)
        elif self.type == "float":
            v = float(t)
            if not math.isfinite(v):
                raise ValueError("must be a finite number")
        elif self.type == "bool":
            v = parse_bool(t)
        else:
            v = t
        if (
            self.choices
            and str(v) not in self.choices
            and not (
                self.type == "str"
                and any(str(v).startswith(c) for c in self.choices if c.endswith(":"))
            )
        ):
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        if self.minimum is not None and isinstance(v, int | float) and v < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and isinstance(v, int | float) and v > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return v

    def param(self) -> Param:
        return Param(
            self.name,
            self.default,
            self.help,
            self.parse,
            default_text=_default_text(self),
            secret=self.secret,
        )


def _default_text(p: ParamSpec) -> str:
    if p.default_text is not None:
        return p.default_text
    if p.default is None:
        return "none" if p.optional else ""
    if isinstance(p.default, bool):
        return "true" if p.default else "false"
    return str(p.default)


@dataclass
class FolderSpec:
    """A task folder's ``task.toml``, checked."""

    path: Path
    name: str
    description: str
    kind: str
    tools: tuple[str, ...]
    max_steps: int
    time_limit_s: float | None
    tool_time_limit_s: float
    resources: Resources
    params: tuple[ParamSpec, ...]
    metric: str
    direction: str
    pass_rule: str
    self_report: str | None
    prepare: tuple[str, str]
    grade: tuple[str, str]
    submit_tool: str
    submit_path: str
    submit_suffix: str
    prompt_file: str
    starter: str | None
    reference_files: tuple[str, ...]
    reference_run: str | None
    reference_python: str | None
    reference_intro: str | None
    check_params: dict[str, str]

    @property
    def toml_path(self) -> Path:
        return self.path / TASK_FILE

    def rule_text(self) -> str:
        """The pass rule with the parameters' defaults filled in."""
        return parse_rule(self.pass_rule, {p.name: p.default for p in self.params}).text()


def _where(spec_path: Path, key: str | None = None) -> str:
    return f"{spec_path}" + (f" [{key}]" if key else "")


def _get(
    table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...
) -> Any:
    if key not in table:
        if default is ...:
            raise TaskFolderError(f"missing `{key}`", where=where)
        return default
    v = table[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        names = {
            str: "a string",
            int: "an integer",
            float: "a number",
            bool: "true or false",
            dict: "a table",
            list: "a list",
        }
        want = (
            names.get(kind, str(kind))
            if isinstance(kind, type)
            else " or ".join(names.get(k, str(k)) for k in kind)
        )
        raise TaskFolderError(f"`{key}` must be {want}, got {v!r}", where=where)
    return v


def _entry(text: str, default_func: str, where: str, key: str) -> tuple[str, str]:
    file, _, func = text.partition(":")
    func = func or default_func
    if not file.endswith(".py") or "/" in file or "\\" in file:
        raise TaskFolderError(
            f"`{key}` must name a Python file of the folder and optionally a function, "
            f'e.g. "{default_func}.py:{default_func}", got {text!r}',
            where=where,
        )
    if not func.isidentifier():
        raise TaskFolderError(f"`{key}`: {func!r} is not a function name", where=where)
    return file, func


_KNOWN_TOP = {
    "name",
    "description",
    "kind",
    "tools",
    "budget",
    "resources",
    "params",
    "metric",
    "pass",
    "data",
    "grade",
    "submit",
    "prompt",
    "starter",
    "reference",
    "check",
}


def load_spec(folder: str | Path) -> FolderSpec:
    """Read and check ``folder/task.toml`` (``TaskFolderError`` for any fault)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise TaskFolderError(
            "not a folder", where=str(path), fix="give a task folder holding task.toml"
        )
    path = path.resolve()
    toml_path = path / TASK_FILE
    if not toml_path.is_file():
        raise TaskFolderError(
            f"no {TASK_FILE} here",
            where=str(path),
            fix="a task folder holds task.toml, description.md, prepare.py and grade.py "
            "(copy tasks/examples/fmnist-repo)",
        )
    try:
        doc = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise TaskFolderError(f"not UTF-8 text ({e.reason})", where=str(toml_path)) from None
    except tomllib.TOMLDecodeError as e:
        raise TaskFolderError(f"not valid TOML: {e}", where=str(toml_path)) from None
    w = str(toml_path)
    unknown = sorted(set(doc) - _KNOWN_TOP)
    if unknown:
        raise TaskFolderError(
            f"unknown key(s) {', '.join(map(repr, unknown))}; the keys are: "
            f"{', '.join(sorted(_KNOWN_TOP))}",
            where=w,
        )
    name = _get(doc, "name", str, w)
    if not _NAME.match(name):
        raise TaskFolderError(
            f"`name` {name!r} must be lower case letters, digits, '-', '_' or '.'", where=w
        )
    description = _get(doc, "description", str, w, "")
    kind = _get(doc, "kind", str, w, "repo")
    if kind not in KINDS:
        raise TaskFolderError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}", where=w)
    tools_raw = _get(doc, "tools", list, w, list(DEFAULT_TOOLS[kind]))
    tools: list[str] = []
    for t in tools_raw:
        t = TOOL_ALIASES.get(t, t) if isinstance(t, str) else t
        if t not in TOOL_NAMES:
            raise TaskFolderError(
                f"`tools`: unknown tool {t!r}; the tools are: {', '.join(TOOL_NAMES)} (the "
                "submit tool is added by itself)",
                where=w,
            )
        if t not in tools:
            tools.append(t)
    budget = _get(doc, "budget", dict, w, {})
    wb = _where(toml_path, "budget")
    max_steps = _get(budget, "max_steps", int, wb, 30)
    if max_steps < 1:
        raise TaskFolderError("`max_steps` must be at least 1", where=wb)
    time_limit = _get(budget, "time_limit_s", float, wb, None) if "time_limit_s" in budget else None
    tool_time = _get(budget, "tool_time_limit_s", float, wb, 600.0)
    for k, v in (("time_limit_s", time_limit), ("tool_time_limit_s", tool_time)):
        if v is not None and not v > 0:
            raise TaskFolderError(f"`{k}` must be a positive number of seconds", where=wb)
    res = _get(doc, "resources", dict, w, {})
    wr = _where(toml_path, "resources")
    resources = Resources(
        cpus=_get(res, "cpus", float, wr, 1.0),
        gpus=_get(res, "gpus", float, wr, 0.0),
        memory_mb=_get(res, "memory_mb", int, wr, 2048),
    )
    params = _params(doc.get("params", {}), toml_path)
    metric_t = _get(doc, "metric", dict, w)
    wm = _where(toml_path, "metric")
    metric = _get(metric_t, "name", str, wm)
    direction = _get(metric_t, "direction", str, wm, "max")
    if direction not in ("max", "min"):
        raise TaskFolderError(f"`direction` must be max or min, got {direction!r}", where=wm)
    self_report: str | bool | None = _get(metric_t, "self_report", (str, bool), wm, SELF_REPORT)
    if self_report is True:
        self_report = SELF_REPORT
    elif self_report is False:
        self_report = None
    if isinstance(self_report, str):
        try:
            rx = re.compile(self_report)
        except re.error as e:
            raise TaskFolderError(
                f"`self_report` is not a regular expression: {e}", where=wm
            ) from None
        if "value" not in rx.groupindex:
            raise TaskFolderError(
                "`self_report` needs a group named value, e.g. 'Final Validation Metric: "
                "(?P<value>[0-9.]+)'",
                where=wm,
            )
    pass_t = _get(doc, "pass", dict, w)
    rule = _get(pass_t, "rule", str, _where(toml_path, "pass"))
    data = _get(doc, "data", dict, w, {})
    prepare = _entry(
        _get(data, "prepare", str, _where(toml_path, "data"), "prepare.py:prepare"),
        "prepare",
        _where(toml_path, "data"),
        "prepare",
    )
    grade_t = _get(doc, "grade", dict, w, {})
    grade = _entry(
        _get(grade_t, "entry", str, _where(toml_path, "grade"), "grade.py:grade"),
        "grade",
        _where(toml_path, "grade"),
        "entry",
    )
    submit = _get(doc, "submit", dict, w, {})
    ws = _where(toml_path, "submit")
    submit_tool = _get(submit, "tool", str, ws, "submit")
    if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$", submit_tool) or submit_tool in TOOL_NAMES:
        raise TaskFolderError(f"`tool` {submit_tool!r} is not a usable tool name", where=ws)
    submit_path = _get(submit, "path", str, ws, "submission/submission.csv")
    submit_suffix = _get(submit, "suffix", str, ws, Path(submit_path).suffix or ".csv")
    prompt_file = _get(doc, "prompt", str, w, "description.md")
    starter = _get(doc, "starter", str, w, None) if "starter" in doc else None
    ref = _get(doc, "reference", dict, w, {})
    wref = _where(toml_path, "reference")
    ref_files = tuple(_get(ref, "files", list, wref, []))
    if not all(isinstance(f, str) for f in ref_files):
        raise TaskFolderError("`files` must be a list of file names", where=wref)
    check = _get(doc, "check", dict, w, {})
    check_params = {
        str(k): ("true" if v is True else "false" if v is False else str(v))
        for k, v in _get(check, "params", dict, _where(toml_path, "check"), {}).items()
    }
    spec = FolderSpec(
        path=path,
        name=name,
        description=description,
        kind=kind,
        tools=tuple(tools),
        max_steps=max_steps,
        time_limit_s=time_limit,
        tool_time_limit_s=tool_time,
        resources=resources,
        params=params,
        metric=metric,
        direction=direction,
        pass_rule=rule,
        self_report=self_report if isinstance(self_report, str) else None,
        prepare=prepare,
        grade=grade,
        submit_tool=submit_tool,
        submit_path=submit_path,
        submit_suffix=submit_suffix,
        prompt_file=prompt_file,
        starter=starter,
        reference_files=ref_files,
        reference_run=_get(ref, "run", str, wref, None) if "run" in ref else None,
        reference_python=_get(ref, "python", str, wref, None) if "python" in ref else None,
        reference_intro=_get(ref, "intro", str, wref, None) if "intro" in ref else None,
        check_params=check_params,
    )
    # the rule must parse with the defaults (thresholds may be parameters)
    parse_rule(rule, {p.name: p.default for p in params}, where=_where(toml_path, "pass"))
    for f in (prepare[0], grade[0], prompt_file):
        if not (path / f).is_file():
            raise TaskFolderError(f"{f} is missing from the task folder", where=str(path))
    return spec


def _params(table: Any, toml_path: Path) -> tuple[ParamSpec, ...]:
    if not isinstance(table, dict):
        raise TaskFolderError("`params` must be a table", where=str(toml_path))
    out: list[ParamSpec] = []
    for name, t in table.items():
        wp = _where(toml_path, f"params.{name}")
        if not name.isidentifier():
            raise TaskFolderError(f"parameter name {name!r} must be an identifier", where=wp)
        if name in ("max_steps",) or name in _ENGINE_PARAM_NAMES:
            raise TaskFolderError(
                f"parameter {name!r} is set by agentdeck itself (use [budget] or the engine's -T)",
                where=wp,
            )
        if not isinstance(t, dict):
            raise TaskFolderError("must be a table with default, help and type", where=wp)
        unknown = set(t) - {"default", "help", "type", "choices", "secret", "min", "max"}
        if unknown:
            raise TaskFolderError(f"unknown key(s) {', '.join(sorted(unknown))}", where=wp)
        default = t.get("default")
        ptype = t.get("type")
        if ptype is None:
            ptype = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(default), "str")
        optional = isinstance(ptype, str) and ptype.endswith("?")
        base = ptype[:-1] if optional else ptype
        if base not in _PARAM_TYPES:
            raise TaskFolderError(
                f"`type` must be one of {', '.join(_PARAM_TYPES)} (with ? for 'or none'), "
                f"got {ptype!r}",
                where=wp,
            )
        choices = t.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise TaskFolderError("`choices` must be a list of strings", where=wp)
        spec = ParamSpec(
            name=name,
            type=base,
            default=None,
            help=str(t.get("help", "")),
            choices=tuple(choices),
            optional=optional,
            secret=bool(t.get("secret", False)),
            minimum=t.get("min"),
            maximum=t.get("max"),
        )
        if default is None and not optional:
            raise TaskFolderError(
                "`default` is missing (or make the type optional: int?)", where=wp
            )
        if default is not None:
            spec.default_text = (
                ("true" if default else "false") if isinstance(default, bool) else str(default)
            )
            try:
                spec.default = spec.parse(
                    str(default).lower() if isinstance(default, bool) else str(default)
                )
            except (ValueError, TypeError) as e:
                raise TaskFolderError(f"`default` {default!r}: {e}", where=wp) from None
        out.append(spec)
    return tuple(out)


_ENGINE_PARAM_NAMES = frozenset(
    {
        "remind_steps_left",
        "tool_time_limit",
        "memory_limit_mb",
        "network",
        "pids_limit",
        "work_limit_mb",
        "cpus",
    }
)


# -- the pass rule -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>>=|<=|>|<)|(?P<kw>AND|OR|and|or)\b|"
    r"(?P<ph>\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})|(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))"
)


def parse_rule(text: str, params: dict[str, Any], *, where: str = "pass rule") -> Rule:
    """``accuracy >= 0.8 AND (macro_f1 >= 0.7 OR f1 > 0.6)``; a threshold may be a
    parameter, ``accuracy >= {{ min_accuracy }}``."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TaskFolderError(
                f"cannot read the pass rule at {text[pos : pos + 20]!r}; write e.g. "
                "'accuracy >= 0.8 AND macro_f1 >= 0.7'",
                where=where,
            )
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind).strip()))
        pos = m.end()
    i = 0

    def peek() -> tuple[str, str] | None:
        return tokens[i] if i < len(tokens) else None

    def take(kind: str) -> str:
        nonlocal i
        t = peek()
        if t is None or t[0] != kind:
            what = {
                "name": "a metric name",
                "op": ">=, >, <= or <",
                "rp": "')'",
                "num": "a number",
            }.get(kind, kind)
            raise TaskFolderError(
                f"pass rule {text!r}: expected {what}"
                + (f", found {t[1]!r}" if t else " at the end"),
                where=where,
            )
        i += 1
        return t[1]

    def number() -> float:
        nonlocal i
        t = peek()
        if t is not None and t[0] == "ph":
            i += 1
            key = _PLACEHOLDER.match(t[1])
            assert key is not None
            name = key.group(1)
            if name not in params:
                raise TaskFolderError(
                    f"pass rule {text!r}: {{{{ {name} }}}} is not a parameter", where=where
                )
            v = params[name]
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise TaskFolderError(
                    f"pass rule {text!r}: parameter {name} must be a number, is {v!r}",
                    where=where,
                )
            return float(v)
        return float(take("num"))

    def factor() -> Rule:
        t = peek()
        if t is not None and t[0] == "lp":
            take("lp")
            r = expr()
            take("rp")
            return r
        metric = take("name")
        op = take("op")
        return Threshold(metric, op, number())

    def term() -> Rule:
        parts = [factor()]
        while (t := peek()) is not None and t[0] == "kw" and t[1].upper() == "AND":
            take("kw")
            parts.append(factor())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def expr() -> Rule:
        parts = [term()]
        while (t := peek()) is not None and t[0] == "kw" and t[1].upper() == "OR":
            take("kw")
            parts.append(term())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    rule = expr()
    if peek() is not None:
        raise TaskFolderError(f"pass rule {text!r}: unexpected {peek()[1]!r}", where=where)  # type: ignore[index]
    return rule


def rule_metrics(rule: Rule) -> list[str]:
    if isinstance(rule, Threshold):
        return [rule.metric]
    return [m for p in rule.parts for m in rule_metrics(p)]


# -- loading the folder's Python ---------------------------------------------------------------


def _load_module(folder: Path, file: str, tag: str) -> ModuleType:
    path = folder / file
    mod_name = f"agentdeck_taskfolder_{re.sub(r'[^A-Za-z0-9_]', '_', tag)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise TaskFolderError("cannot be loaded as Python", where=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # helpers next to prepare.py / grade.py
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise TaskFolderError(f"line {e.lineno}: syntax error: {e.msg}", where=str(path)) from None
    except Exception as e:  # noqa: BLE001 - the user's module failed to import: say where
        raise TaskFolderError(_user_failure(e, path), where=str(path)) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))
    return module


def _user_failure(e: BaseException, path: Path) -> str:
    """``line 12 (prepare): KeyError: 'x'``: where in the user's file it failed."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
    at = f"line {frames[-1].lineno} ({frames[-1].name}): " if frames else ""
    return f"{at}{type(e).__name__}: {e}"


def _func(
    module: ModuleType, name: str, path: Path, *, required: bool = True
) -> Callable[..., Any] | None:
    f = getattr(module, name, None)
    if f is None:
        if required:
            raise TaskFolderError(f"defines no function {name}()", where=str(path))
        return None
    if not callable(f):
        raise TaskFolderError(f"{name} is not a function", where=str(path))
    return f  # type: ignore[no-any-return]


@dataclass
class _Code:
    prepare: Callable[..., Any]
    grade: Callable[..., Any]
    perfect: Callable[..., Any] | None
    broken: Callable[..., Any] | None
    reveal: Callable[..., Any] | None


def _load_code(spec: FolderSpec) -> _Code:
    pf, pfunc = spec.prepare
    gf, gfunc = spec.grade
    pmod = _load_module(spec.path, pf, spec.name)
    gmod = pmod if gf == pf else _load_module(spec.path, gf, spec.name)
    prep = _func(pmod, pfunc, spec.path / pf)
    grade = _func(gmod, gfunc, spec.path / gf)
    assert prep is not None and grade is not None
    return _Code(
        prepare=prep,
        grade=grade,
        perfect=_func(gmod, "perfect_submission", spec.path / gf, required=False),
        broken=_func(gmod, "broken_submissions", spec.path / gf, required=False),
        reveal=_func(gmod, "reveal", spec.path / gf, required=False),
    )


def render_prompt(template: str, values: dict[str, Any], *, where: str) -> str:
    """``{{ name }}`` replaced by ``values[name]``; an unknown name is a ``TaskFolderError``."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise TaskFolderError(
                f"{{{{ {key} }}}} is neither a parameter nor a fact prepare() reported; the "
                f"names are: {', '.join(sorted(values))}",
                where=where,
            )
        v = values[key]
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, list | tuple):
            return ", ".join(map(str, v))
        return str(v)

    return _PLACEHOLDER.sub(sub, template)


# -- the task ---------------------------------------------------------------------------------


def _grade_submission(
    spec: FolderSpec,
    code: _Code,
    path: Path,
    answers: Any,
    gctx: GradeContext,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user's grade(): (metrics, details); ``SubmissionError`` passes through, any
    other exception is a ``TaskFolderError`` naming the line of grade.py."""
    try:
        out = code.grade(path, answers, gctx)
    except SubmissionError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug in the task's grade.py: say where
        raise TaskFolderError(
            _user_failure(e, spec.path / spec.grade[0]), where=str(spec.path / spec.grade[0])
        ) from None
    if isinstance(out, tuple) and len(out) == 2:
        metrics, details = out
    else:
        metrics, details = out, {}
    if not isinstance(metrics, dict) or not isinstance(details, dict):
        raise TaskFolderError(
            f"{spec.grade[1]}() must return a dict of metrics or (metrics, details), got "
            f"{type(out).__name__}",
            where=str(spec.path / spec.grade[0]),
        )
    if spec.metric not in metrics:
        raise TaskFolderError(
            f"{spec.grade[1]}() returned no {spec.metric!r} (the task's metric); it returned "
            f"{', '.join(map(str, metrics)) or 'nothing'}",
            where=str(spec.path / spec.grade[0]),
        )
    clean: dict[str, Any] = {}
    for k, v in metrics.items():
        if hasattr(v, "item"):
            v = v.item()
        clean[str(k)] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    return clean, details


class _SelfReport:
    """The last ``Final Validation Metric: X`` the agent's code printed (from bash output)."""

    def __init__(self, pattern: str, metric: str) -> None:
        self.rx = re.compile(pattern)
        self.metric = metric
        self.value: float | None = None
        self.step: int | None = None
        self._partial: dict[str, str] = {}

    def watch(self, ctx: ToolContext, stream: str, text: str) -> None:
        buf = self._partial.get(ctx.call_id + stream, "") + text
        *lines, rest = buf.split("\n")
        self._partial[ctx.call_id + stream] = rest[-4096:]
        for line in lines:
            m = self.rx.search(line)
            if m is None:
                continue
            try:
                v = float(m.group("value"))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                continue
            self.value, self.step = v, ctx.step
            ctx.emit(
                Metric(
                    name="self_reported/validation",
                    value=v,
                    step=ctx.step,
                    x=float(ctx.step),
                    source="agent",
                )
            )


class FolderTask(Task):
    """A task defined by a folder (see the module docstring)."""

    spec: FolderSpec

    def __init__(self, spec: FolderSpec | None = None) -> None:
        if spec is not None:
            self.spec = spec
        s = self.spec
        self.name = s.name
        self.description = s.description or f"{s.kind} task from {s.path}"
        self.params = tuple(p.param() for p in s.params)
        self.resources = s.resources
        self.folder = s.path
        self._code: _Code | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    def code(self) -> _Code:
        if self._code is None:
            self._code = _load_code(self.spec)
        return self._code

    def setup(
        self, params: dict[str, Any], run_dir: RunDir, progress: ProgressFn | None = None
    ) -> TaskInstance:
        spec = self.spec
        code = self.code()
        run_dir.public.mkdir(parents=True, exist_ok=True)
        pctx = PrepareContext(
            params=dict(params), public=run_dir.public, folder=spec.path, progress=progress
        )
        answers = _run_prepare(spec, code, pctx)
        if spec.starter:
            _copy_starter(spec, run_dir.work)
        values = _prompt_values(spec, params, pctx.facts)
        prompt_path = spec.path / spec.prompt_file
        prompt = render_prompt(
            prompt_path.read_text(encoding="utf-8"), values, where=str(prompt_path)
        ).strip()
        rule = parse_rule(spec.pass_rule, params, where=_where(spec.toml_path, "pass"))
        report = _SelfReport(spec.self_report, spec.metric) if spec.self_report else None
        gctx = GradeContext(params=dict(params), public=run_dir.public, folder=spec.path)
        state: dict[str, Any] = {"revealed": False}

        def submit(inp: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
            raw = inp.get("path", spec.submit_path)
            work = Path(ctx.sandbox.work_dir) if ctx.sandbox is not None else ctx.run_dir.work
            try:
                path = resolve_submission(
                    work, raw, suffix=spec.submit_suffix, field="path", example=spec.submit_path
                )
                metrics, details = _grade_submission(spec, code, path, answers, gctx)
            except SubmissionError as e:
                return ToolOutcome(output={"error": str(e)}, error=str(e))
            passed, checks = evaluate(rule, metrics)
            details = {
                "submission": str(raw),
                **details,
                "metric": spec.metric,
                "direction": spec.direction,
            }
            if report is not None:
                details["self_reported"] = {
                    "metric": spec.metric,
                    "validation": report.value,
                    "step": report.step,
                    "test": metrics.get(spec.metric),
                }
                if report.value is not None and isinstance(metrics.get(spec.metric), float):
                    metrics["self_reported_validation"] = report.value
                    metrics["test_minus_validation"] = metrics[spec.metric] - report.value
            grade = Grade(
                metrics=metrics,
                criteria=rule.text(),
                checks=checks,
                passed=passed,
                submitted=True,
                step=ctx.step,
                details=details,
            )
            shown = {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in metrics.items()
                if isinstance(v, int | float | str | bool)
            }
            return ToolOutcome(
                output={
                    "message": "Submission graded on the hidden test labels.",
                    **shown,
                    "passed": passed,
                },
                grade=grade,
            )

        def reveal(emit: Callable[[Event], Event]) -> None:
            if state["revealed"] or code.reveal is None:
                return
            state["revealed"] = True
            run_dir.artifacts.mkdir(parents=True, exist_ok=True)
            written = code.reveal(answers, run_dir.artifacts) or []
            for rel in written:
                p = Path(rel)
                name = p.name
                emit(
                    Artifact(
                        name=f"answers: {name}",
                        path=f"artifacts/{name}",
                        mime="text/csv" if name.endswith(".csv") else "application/octet-stream",
                    )
                )

        tools = _make_tools(spec, report)
        tools.append(
            ToolSpec(
                spec.submit_tool,
                f"Submit your predictions file (relative to the working directory, default "
                f"{spec.submit_path!r}). A valid submission is graded on the hidden test "
                "labels and ends the task; an invalid one is an error you can fix and "
                "submit again.",
                {
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": "string",
                            "description": f"the file to submit, e.g. {spec.submit_path!r}",
                        }
                    },
                    "required": ["path"],
                },
                submit,
            )
        )
        shown_params = dict(params)
        return TaskInstance(
            system="",
            prompt=prompt,
            tools=tools,
            submit_tool=spec.submit_tool,
            max_steps=spec.max_steps,
            tool_time_limit_s=spec.tool_time_limit_s,
            time_limit_s=spec.time_limit_s,
            params=shown_params,
            seed=params.get("seed") if isinstance(params.get("seed"), int) else None,
            reference_policy=_reference_policy(spec),
            resources=spec.resources,
            on_end=reveal,
            hidden_paths=tuple(pctx.hidden),
        )


def _run_prepare(spec: FolderSpec, code: _Code, ctx: PrepareContext) -> Any:
    path = spec.path / spec.prepare[0]
    try:
        return code.prepare(ctx)
    except UserError:
        raise
    except (ValueError, OSError) as e:  # the data or a parameter does not fit: say so
        raise TaskParamError(f"task {spec.name}: {_user_failure(e, path)}") from None
    except Exception as e:  # noqa: BLE001 - a bug in the task's prepare.py: say where
        raise TaskFolderError(_user_failure(e, path), where=str(path)) from None


def _copy_starter(spec: FolderSpec, work: Path) -> None:
    assert spec.starter is not None
    src = spec.path / spec.starter
    if not src.is_dir():
        raise TaskFolderError(
            f"starter folder {spec.starter!r} is missing", where=str(spec.toml_path)
        )
    shutil.copytree(src, work, dirs_exist_ok=True)


def _prompt_values(
    spec: FolderSpec, params: dict[str, Any], facts: dict[str, Any]
) -> dict[str, Any]:
    return {
        **{k: ("none" if v is None else v) for k, v in params.items()},
        "max_steps": spec.max_steps,
        "data_dir": DATA_DIR_NAME,
        "submit_tool": spec.submit_tool,
        "submit_path": spec.submit_path,
        "metric": spec.metric,
        "direction": "higher is better" if spec.direction == "max" else "lower is better",
        "pass_rule": parse_rule(spec.pass_rule, params).text(),
        "tool_time_limit_s": f"{spec.tool_time_limit_s:g}",
        **facts,
    }


def _make_tools(spec: FolderSpec, report: _SelfReport | None) -> list[ToolSpec]:
    out: list[ToolSpec] = []
    for name in spec.tools:
        if name == "bash":
            from agentdeck.engine.sandbox.bash_tool import bash_tool

            out.append(bash_tool(watch=report.watch if report is not None else None))
        elif name == "str_replace_based_edit_tool":
            from agentdeck.engine.editor import editor_tool

            out.append(editor_tool())
        else:
            from agentdeck.engine.sandbox.tool import python_expression_tool

            out.append(python_expression_tool())
    return out


def _first_doc_line(text: str) -> str:
    m = re.match(r'\s*(?:"""|\'\'\')\s*(.+?)\s*$', text, re.M)
    return m.group(1).rstrip(".\"'") if m else ""


def _reference_policy(spec: FolderSpec) -> list[ScriptedStep]:
    """The reference solution as steps: look at the data, write each file with the editor,
    run it, submit."""
    steps: list[ScriptedStep] = []
    ref = spec.path / "reference"
    if not (spec.reference_files or spec.reference_python):
        return steps
    if "bash" in spec.tools:
        steps.append(
            ScriptedStep(
                "bash",
                {"command": f"ls -la {DATA_DIR_NAME} && head -3 {DATA_DIR_NAME}/*.csv"},
                spec.reference_intro or "First, a look at the data.",
            )
        )
    for rel in spec.reference_files:
        text = (ref / rel).read_text(encoding="utf-8")
        what = _first_doc_line(text)
        steps.append(
            ScriptedStep(
                "str_replace_based_edit_tool",
                {"command": "create", "path": rel, "file_text": text},
                f"Writing {rel}" + (f": {what[0].lower() + what[1:]}." if what else "."),
            )
        )
    if spec.reference_run:
        steps.append(
            ScriptedStep(
                "bash",
                {"command": spec.reference_run},
                "Running the solution: it trains, reports its validation metric and writes "
                "the submission.",
            )
        )
    if spec.reference_python:
        steps.append(
            ScriptedStep(
                "python_expression",
                {"code": (ref / spec.reference_python).read_text(encoding="utf-8")},
                "Running the solution.",
            )
        )
    steps.append(
        ScriptedStep(spec.submit_tool, {"path": spec.submit_path}, "Submitting the predictions.")
    )
    return steps


def load_folder_task(folder: str | Path) -> FolderTask:
    """The task defined by a folder (``TaskFolderError`` if it is not a valid one)."""
    return FolderTask(load_spec(folder))


def folder_task_class(folder: str | Path) -> type[FolderTask]:
    """A ``Task`` subclass for a folder, for the ``agentdeck.tasks`` entry-point group.
    The folder is read when the class is instantiated (``get_task``)."""
    path = Path(folder)

    class _Folder(FolderTask):
        def __init__(self) -> None:
            super().__init__(load_spec(path))

    _Folder.__name__ = _Folder.__qualname__ = (
        f"FolderTask_{re.sub(r'[^A-Za-z0-9]', '_', path.name)}"
    )
    _Folder.folder_path = path  # type: ignore[attr-defined]
    return _Folder


def is_task_folder(path: str | Path) -> bool:
    return (Path(path).expanduser() / TASK_FILE).is_file()


def find_task_folders(root: str | Path) -> Iterator[Path]:
    """Task folders at ``root`` or up to two levels below it."""
    base = Path(root).expanduser()
    if is_task_folder(base):
        yield base
        return
    if not base.is_dir():
        return
    for d in sorted(base.iterdir()):
        if is_task_folder(d):
            yield d
        elif d.is_dir():
            for dd in sorted(d.iterdir()):
                if is_task_folder(dd):
                    yield dd


# -- agentdeck task check ----------------------------------------------------------------------


@dataclass
class CheckItem:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class CheckReport:
    folder: Path
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(i.ok for i in self.items)

    def add(self, name: str, ok: bool, detail: str = "", seconds: float = 0.0) -> CheckItem:
        item = CheckItem(name, ok, detail, seconds)
        self.items.append(item)
        return item


def _generic_broken(good: Path, folder: Path) -> dict[str, Path]:
    """Broken versions of a text submission: empty, half the rows, another header, a NaN."""
    out: dict[str, Path] = {}
    try:
        lines = good.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return out
    suffix = good.suffix

    def put(name: str, text: str) -> None:
        p = folder / f"{name}{suffix}"
        p.write_text(text, encoding="utf-8")
        out[name] = p

    put("empty", "")
    if len(lines) > 2:
        put("missing rows", "".join(lines[: max(2, len(lines) // 2)]))
        put("duplicated row", "".join(lines + lines[-1:]))
    if lines:
        put("wrong columns", "wrong,columns,here\n" + "".join(lines[1:]))
    if len(lines) > 1:
        last = lines[-1].rstrip("\n").split(",")
        last[-1] = "nan"
        put("NaN value", "".join(lines[:-1]) + ",".join(last) + "\n")
    return out


def check_folder(
    folder: str | Path,
    *,
    params: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    on_item: Callable[[CheckItem], None] | None = None,
) -> CheckReport:
    """``agentdeck task check``: the toml, prepare on the check parameters (``[check]``
    of task.toml, e.g. a small offline data set), the prompt, grade on the answers as a
    perfect submission (must pass) and on broken ones (must each be refused with a
    ``SubmissionError``), and the reference files."""
    report = CheckReport(Path(folder))

    def add(name: str, ok: bool, detail: str = "", seconds: float = 0.0) -> None:
        item = report.add(name, ok, detail, seconds)
        if on_item is not None:
            on_item(item)

    t0 = time.perf_counter()
    try:
        spec = load_spec(folder)
    except TaskFolderError as e:
        add(TASK_FILE, False, str(e))
        return report
    report.folder = spec.path
    add(
        TASK_FILE,
        True,
        f"{spec.name}: {spec.kind} task, tools {', '.join(spec.tools)}, "
        f"metric {spec.metric} ({spec.direction}), pass {spec.rule_text()}",
        time.perf_counter() - t0,
    )
    task = FolderTask(spec)
    raw = {**spec.check_params, **(params or {})}
    try:
        typed = task.parse_params(raw)
    except TaskParamError as e:
        add("parameters", False, str(e))
        return report
    t0 = time.perf_counter()
    try:
        code = task.code()
    except TaskFolderError as e:
        add("python files", False, str(e))
        return report
    add(
        "python files",
        True,
        f"{spec.prepare[0]}:{spec.prepare[1]}, {spec.grade[0]}:{spec.grade[1]}"
        + (", perfect_submission" if code.perfect else "")
        + (", broken_submissions" if code.broken else "")
        + (", reveal" if code.reveal else ""),
        time.perf_counter() - t0,
    )
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-task-check-"))
    try:
        run_dir = RunDir.create(tmp, "check")
        run_dir.public.mkdir(parents=True, exist_ok=True)
        pctx = PrepareContext(
            params=dict(typed), public=run_dir.public, folder=spec.path, progress=progress
        )
        t0 = time.perf_counter()
        try:
            answers = _run_prepare(spec, code, pctx)
        except UserError as e:
            add("prepare", False, str(e), time.perf_counter() - t0)
            return report
        files = sorted(
            p.relative_to(run_dir.public).as_posix()
            for p in run_dir.public.rglob("*")
            if p.is_file()
        )
        ok = bool(files) and answers is not None
        add(
            "prepare",
            ok,
            (
                f"with {', '.join(f'{k}={v}' for k, v in raw.items()) or 'the defaults'}: "
                f"public files {', '.join(files) or '(none!)'}"
                + ("" if answers is not None else "; prepare() returned no answers")
            ),
            time.perf_counter() - t0,
        )
        if not ok:
            return report
        try:
            values = _prompt_values(spec, typed, pctx.facts)
            prompt_path = spec.path / spec.prompt_file
            prompt = render_prompt(
                prompt_path.read_text(encoding="utf-8"), values, where=str(prompt_path)
            )
            add(
                "prompt",
                True,
                f"{spec.prompt_file}: {len(prompt.split()):,} words, "
                f"{len(_PLACEHOLDER.findall(prompt_path.read_text(encoding='utf-8')))} placeholders filled",
            )
        except TaskFolderError as e:
            add("prompt", False, str(e))
        rule = parse_rule(spec.pass_rule, typed)
        gctx = GradeContext(params=dict(typed), public=run_dir.public, folder=spec.path)
        if code.perfect is None:
            add(
                "perfect submission",
                False,
                f"{spec.grade[0]} defines no perfect_submission"
                "(answers, path): task check needs it to grade the answers as a submission",
            )
            return report
        good = tmp / f"perfect{spec.submit_suffix}"
        t0 = time.perf_counter()
        try:
            code.perfect(answers, good)
            metrics, _ = _grade_submission(spec, code, good, answers, gctx)
            passed, _ = evaluate(rule, metrics)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            add(
                "perfect submission",
                passed,
                f"graded {shown}; {'passes' if passed else 'does NOT pass'} {rule.text()}",
                time.perf_counter() - t0,
            )
        except SubmissionError as e:
            add("perfect submission", False, f"refused: {e}", time.perf_counter() - t0)
            return report
        except TaskFolderError as e:
            add("perfect submission", False, str(e), time.perf_counter() - t0)
            return report
        except Exception as e:  # noqa: BLE001 - perfect_submission() itself failed
            add(
                "perfect submission",
                False,
                _user_failure(e, spec.path / spec.grade[0]),
                time.perf_counter() - t0,
            )
            return report
        broken_dir = tmp / "broken"
        broken_dir.mkdir()
        broken = _generic_broken(good, broken_dir)
        if code.broken is not None:
            try:
                extra = code.broken(answers, broken_dir) or {}
                broken.update({str(k): Path(v) for k, v in dict(extra).items()})
            except Exception as e:  # noqa: BLE001
                add("broken submissions", False, _user_failure(e, spec.path / spec.grade[0]))
        if not broken:
            add(
                "broken submissions",
                False,
                "none to try: the submission is not text and "
                f"{spec.grade[0]} defines no broken_submissions(answers, folder)",
            )
        for what, path in broken.items():
            t0 = time.perf_counter()
            try:
                _grade_submission(spec, code, path, answers, gctx)
            except SubmissionError as e:
                add(f"refuses: {what}", True, str(e), time.perf_counter() - t0)
            except TaskFolderError as e:
                add(
                    f"refuses: {what}",
                    False,
                    f"crashed instead of a SubmissionError: {e}",
                    time.perf_counter() - t0,
                )
            else:
                add(
                    f"refuses: {what}",
                    False,
                    "accepted a broken submission",
                    time.perf_counter() - t0,
                )
        if spec.reference_files or spec.reference_python:
            ref = spec.path / "reference"
            missing = [
                f
                for f in (*spec.reference_files, spec.reference_python or "")
                if f and not (ref / f).is_file()
            ]
            add(
                "reference",
                not missing,
                f"missing in reference/: {', '.join(missing)}"
                if missing
                else f"{len(spec.reference_files)} files"
                + (f", run `{spec.reference_run}`" if spec.reference_run else ""),
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


__all__ = [
    "KINDS",
    "SELF_REPORT",
    "TASK_FILE",
    "TOOL_NAMES",
    "CheckItem",
    "CheckReport",
    "FolderSpec",
    "FolderTask",
    "GradeContext",
    "ParamSpec",
    "PrepareContext",
    "TaskFolderError",
    "check_folder",
    "find_task_folders",
    "folder_task_class",
    "is_task_folder",
    "load_folder_task",
    "load_spec",
    "parse_rule",
    "render_prompt",
]
