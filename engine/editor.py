"""The ``str_replace_based_edit_tool``: view, create and edit files of the working directory.

The input shape is that of Anthropic's text editor tool (``text_editor_20250728``,
which Claude 4 models are trained on): ``command`` one of ``view``, ``create``,
``str_replace``, ``insert``, with ``path``, ``view_range``, ``file_text``, ``old_str``,
``new_str``, ``insert_line`` and ``insert_text`` (``new_str`` is taken for ``insert``
too, as older versions of the tool spelt it). The answers and error messages follow
Anthropic's reference implementation, so a model reads what it expects:

- ``view`` shows a file with line numbers (``cat -n``), optionally a ``view_range``
  ``[start, end]`` (``end`` -1: to the end), or a directory two levels deep without
  hidden entries; long views are cut at ``max_characters``;
- ``create`` refuses to overwrite a file ("File already exists ...");
- ``str_replace`` needs ``old_str`` to occur exactly once (no match and several
  matches are errors that say so, with the lines of the matches);
- ``insert`` puts text after line ``insert_line`` (0: at the top).

Paths are relative to the working directory or absolute inside it; anything that
leaves it (``..``, an absolute path elsewhere, a symlink pointing out) is refused with
the same checks as submissions, and the read-only task data (``.agentdeck_data``) can
be viewed, not changed. Binary and non-UTF-8 files are refused. Every change is
reported as a ``file_change`` event (``Sandbox.files``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentdeck.engine.sandbox.isolation import DATA_DIR_NAME
from agentdeck.engine.tools import ToolContext, ToolOutcome, ToolSpec

TOOL_NAME = "str_replace_based_edit_tool"
COMMANDS = ("view", "create", "str_replace", "insert")
SNIPPET_LINES = 4
#: Characters of one view shown to the model (the tool's ``max_characters``).
MAX_CHARACTERS = 16_000
#: Largest file the editor reads or writes.
MAX_FILE_BYTES = 4 << 20

DESCRIPTION = (
    "View, create and edit files of the working directory. Commands: `view` (a file with "
    "line numbers, optionally `view_range` [start, end], end -1 for the end; or a directory, "
    "two levels deep), `create` (a new file with `file_text`; an existing file is not "
    "overwritten), `str_replace` (replace `old_str`, which must occur exactly once, with "
    "`new_str`), `insert` (`insert_text` after line `insert_line`, 0 for the top). Paths "
    "are relative to the working directory or absolute inside it."
)

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "type": "string",
            "enum": list(COMMANDS),
            "description": "The command to run: view, create, str_replace or insert.",
        },
        "path": {
            "type": "string",
            "description": "File or directory, relative to the working directory or absolute "
            "inside it, e.g. `main.py` or `src/models.py`.",
        },
        "view_range": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "view: [start, end] line numbers, 1-based; end -1 means to the end.",
        },
        "file_text": {"type": "string", "description": "create: the content of the new file."},
        "old_str": {
            "type": "string",
            "description": "str_replace: the exact text to replace (must occur once).",
        },
        "new_str": {"type": "string", "description": "str_replace: the text to put instead."},
        "insert_line": {
            "type": "integer",
            "description": "insert: the line after which to insert (0: before the first line).",
        },
        "insert_text": {"type": "string", "description": "insert: the text to insert."},
    },
    "required": ["command", "path"],
}


class EditorError(Exception):
    """A call the editor refuses; ``str()`` goes to the model as the tool error."""


def _fail(msg: str) -> ToolOutcome:
    return ToolOutcome(output=msg, error=msg)


def work_root(ctx: ToolContext) -> Path:
    """The working directory as the sandbox sees it (and as paths name it)."""
    if ctx.sandbox is not None:
        return Path(ctx.sandbox.work_dir)
    return ctx.run_dir.work.resolve()


def resolve_path(
    root: Path, raw: Any, *, write: bool, data_dir: Path | None = None
) -> tuple[Path, str]:
    """(absolute path, path relative to the root) of an editor path; ``EditorError``
    when it leaves the working directory or would write the read-only task data.
    ``data_dir`` is where the engine keeps that data (``work/.agentdeck_data`` as the
    sandbox sees it); paths into it are read there."""
    if not isinstance(raw, str) or not raw.strip():
        raise EditorError("`path` must be a file path such as `main.py`")
    if "\0" in raw:
        raise EditorError(f"The path {raw!r} contains a NUL byte")
    root = root.resolve()
    p = Path(raw)
    candidate = p if p.is_absolute() else root / p
    lexical = Path(os.path.normpath(candidate))
    if lexical != root and root not in lexical.parents:
        raise EditorError(
            f"The path {raw} is outside the working directory {root}; use a path inside it "
            "(relative, e.g. `main.py`, or absolute under that directory)"
        )
    rel = lexical.relative_to(root).as_posix() if lexical != root else "."
    real = lexical.resolve()
    data = root / DATA_DIR_NAME
    in_data = rel == DATA_DIR_NAME or rel.startswith(DATA_DIR_NAME + "/")
    if not in_data and real != root and root not in real.parents:
        raise EditorError(f"The path {raw} is a link to a place outside the working directory")
    if write and (in_data or real == data or data in real.parents):
        raise EditorError(
            f"The path {raw} is in the task's data folder ({DATA_DIR_NAME}), which is "
            "read-only; write your files elsewhere in the working directory"
        )
    if in_data:
        if data_dir is None:
            return lexical, rel
        inner = rel[len(DATA_DIR_NAME) + 1 :]
        target = Path(os.path.normpath(data_dir / inner)) if inner else data_dir
        return target, rel
    return real, rel


def _numbered(text: str, start: int = 1) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines = lines[:-1]
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(lines, start))


def _read_text(path: Path, shown: str) -> str:
    if not path.exists():
        raise EditorError(f"The path {shown} does not exist. Please provide a valid path.")
    if path.is_dir():
        raise EditorError(
            f"The path {shown} is a directory and only the `view` command can be used on "
            "directories"
        )
    if not path.is_file():
        raise EditorError(f"The path {shown} is not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise EditorError(
            f"The file {shown} is {size:,} bytes, more than the editor handles "
            f"({MAX_FILE_BYTES:,}); look at parts of it with bash (head, sed -n)"
        )
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise EditorError(
            f"The file {shown} is a binary file ({size:,} bytes); the editor views and edits "
            "UTF-8 text only"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EditorError(
            f"The file {shown} is not UTF-8 text (byte {e.start}: {e.reason}); the editor "
            "views and edits UTF-8 text only"
        ) from None


def _write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise EditorError(
            f"The new content is {len(data):,} bytes, more than the editor writes "
            f"({MAX_FILE_BYTES:,}); write large files from code"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (
        text[:limit]
        + f"\n<response clipped: {len(text) - limit:,} more characters; use `view_range` to "
        "see the rest>"
    )


def _snippet(text: str, center_first: int, center_last: int, shown: str) -> str:
    lines = text.split("\n")
    start = max(1, center_first - SNIPPET_LINES)
    end = min(len(lines), center_last + SNIPPET_LINES)
    body = "\n".join(lines[start - 1 : end])
    return (
        f"The file {shown} has been edited. Here's the result of running `cat -n` on a "
        f"snippet of {shown}:\n{_numbered(body, start)}\n"
        "Review the changes and make sure they are as expected. Edit the file again if "
        "necessary."
    )


def _view_dir(path: Path, shown: str) -> str:
    out: list[str] = []
    for top in sorted(path.iterdir(), key=lambda p: p.name):
        if top.name.startswith(".") or top.name == "node_modules":
            continue
        out.append(f"{shown.rstrip('/')}/{top.name}" + ("/" if top.is_dir() else ""))
        if top.is_dir() and not top.is_symlink():
            try:
                kids = sorted(top.iterdir(), key=lambda p: p.name)
            except OSError:
                continue
            for k in kids:
                if k.name.startswith(".") or k.name == "node_modules":
                    continue
                out.append(f"{shown.rstrip('/')}/{top.name}/{k.name}" + ("/" if k.is_dir() else ""))
    listing = "\n".join(out) if out else "(empty)"
    return (
        f"Here's the files and directories up to 2 levels deep in {shown}, excluding hidden "
        f"items:\n{listing}"
    )


def _view(path: Path, shown: str, view_range: Any, max_chars: int) -> str:
    if path.is_dir():
        if view_range is not None:
            raise EditorError(
                "The `view_range` parameter is not allowed when `path` points to a directory."
            )
        return _cut(_view_dir(path, shown), max_chars)
    text = _read_text(path, shown)
    n = len(text.split("\n")) - (1 if text.endswith("\n") else 0)
    if view_range is None:
        return _cut(
            f"Here's the result of running `cat -n` on {shown}:\n{_numbered(text)}", max_chars
        )
    if (
        not isinstance(view_range, list)
        or len(view_range) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in view_range)
    ):
        raise EditorError("Invalid `view_range`. It should be a list of two integers.")
    start, end = view_range
    if not 1 <= start <= max(n, 1):
        raise EditorError(
            f"Invalid `view_range`: {view_range}. Its first element `{start}` should be "
            f"within the range of lines of the file: [1, {n}]"
        )
    if end != -1 and end < start:
        raise EditorError(
            f"Invalid `view_range`: {view_range}. Its second element `{end}` should be "
            f"larger or equal than its first `{start}`"
        )
    if end > n:
        raise EditorError(
            f"Invalid `view_range`: {view_range}. Its second element `{end}` should be "
            f"smaller than the number of lines in the file: `{n}`"
        )
    lines = text.split("\n")
    part = "\n".join(lines[start - 1 : (None if end == -1 else end)])
    return _cut(
        f"Here's the result of running `cat -n` on {shown}:\n{_numbered(part, start)}", max_chars
    )


def _str_replace(path: Path, shown: str, old: Any, new: Any) -> str:
    if not isinstance(old, str):
        raise EditorError("Parameter `old_str` is required for command: str_replace")
    if old == "":
        raise EditorError(
            "Parameter `old_str` must not be empty for command: str_replace; to add text use "
            "`insert`"
        )
    if new is None:
        new = ""
    if not isinstance(new, str):
        raise EditorError("Parameter `new_str` must be a string")
    text = _read_text(path, shown)
    count = text.count(old)
    if count == 0:
        raise EditorError(
            f"No replacement was performed, old_str `{old}` did not appear verbatim in {shown}."
        )
    if count > 1:
        lines, at = [], text.find(old)
        while at >= 0:
            lines.append(text.count("\n", 0, at) + 1)
            at = text.find(old, at + 1)
        raise EditorError(
            f"No replacement was performed. Multiple occurrences of old_str `{old}` in lines "
            f"{lines}. Please ensure it is unique"
        )
    at = text.find(old)
    result = text[:at] + new + text[at + len(old) :]
    _write_text(path, result)
    first = text.count("\n", 0, at) + 1
    return _snippet(result, first, first + new.count("\n"), shown)


def _insert(path: Path, shown: str, line: Any, new: Any) -> str:
    if not isinstance(line, int) or isinstance(line, bool):
        raise EditorError("Parameter `insert_line` (an integer) is required for command: insert")
    if not isinstance(new, str):
        raise EditorError("Parameter `insert_text` is required for command: insert")
    text = _read_text(path, shown)
    lines = text.split("\n")
    trailing = text.endswith("\n")
    if trailing:
        lines = lines[:-1]
    n = len(lines) if text else 0
    if not 0 <= line <= n:
        raise EditorError(
            f"Invalid `insert_line` parameter: {line}. It should be within the range of lines "
            f"of the file: [0, {n}]"
        )
    new_lines = new.split("\n")
    if new.endswith("\n"):
        new_lines = new_lines[:-1]
    body = lines[:line] + new_lines + lines[line:] if text else new_lines
    result = "\n".join(body) + ("\n" if trailing or not text else "")
    _write_text(path, result)
    return _snippet(result, line + 1, line + len(new_lines), shown)


def editor_tool(*, max_characters: int = MAX_CHARACTERS) -> ToolSpec:
    """The ``str_replace_based_edit_tool`` on the run's working directory."""

    def handler(tool_input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        command = tool_input.get("command")
        if command not in COMMANDS:
            extra = (
                " (`undo_edit` is not part of this version of the tool; edit the file back "
                "with `str_replace`)"
                if command == "undo_edit"
                else ""
            )
            return _fail(
                f"Unrecognized command {command!r}. The allowed commands for the {TOOL_NAME} "
                f"tool are: {', '.join(COMMANDS)}{extra}"
            )
        root = work_root(ctx)
        raw = tool_input.get("path")
        files = ctx.sandbox.files if ctx.sandbox is not None else None
        if files is not None:
            files.baseline(ctx.emit)
        try:
            path, rel = resolve_path(
                root, raw, write=command != "view", data_dir=ctx.run_dir.public
            )
            shown = str(raw)
            if command == "view":
                return ToolOutcome(
                    output=_view(path, shown, tool_input.get("view_range"), max_characters)
                )
            if command == "create":
                text = tool_input.get("file_text")
                if not isinstance(text, str):
                    raise EditorError("Parameter `file_text` is required for command: create")
                if path.is_dir():
                    raise EditorError(f"The path {shown} is a directory; give a file path")
                if path.exists() or path.is_symlink():
                    raise EditorError(
                        f"File already exists at: {shown}. Cannot overwrite files using command "
                        "`create`; change it with `str_replace`, or remove it first with bash"
                    )
                _write_text(path, text)
                out = f"File created successfully at: {shown}"
            elif command == "str_replace":
                out = _str_replace(
                    path, shown, tool_input.get("old_str"), tool_input.get("new_str")
                )
            else:
                new = tool_input.get("insert_text", tool_input.get("new_str"))
                out = _insert(path, shown, tool_input.get("insert_line"), new)
        except EditorError as e:
            return _fail(str(e))
        except OSError as e:
            return _fail(f"The editor could not {command} {raw}: {e.strerror or e}")
        if files is not None:
            files.record(rel, ctx.emit, step=ctx.step, call_id=ctx.call_id)
        return ToolOutcome(output=out)

    return ToolSpec(
        name=TOOL_NAME,
        description=DESCRIPTION,
        input_schema=INPUT_SCHEMA,
        handler=handler,
        anthropic_tool="text_editor",
    )


__all__ = ["COMMANDS", "TOOL_NAME", "EditorError", "editor_tool", "resolve_path"]
