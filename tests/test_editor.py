"""The str_replace_based_edit_tool: every command, every error, the path checks, and the
file_change event each edit leaves."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agentdeck.engine.editor import INPUT_SCHEMA, TOOL_NAME, editor_tool
from agentdeck.engine.events import Event, FileChange
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox.isolation import DATA_DIR_NAME
from agentdeck.engine.tools import ToolContext, check_input
from agentdeck.engine.workfiles import WorkFiles, apply_diff


class Env:
    """A run directory, its work/ and a sandbox stand-in (work_dir, files)."""

    def __init__(self, tmp: Path) -> None:
        self.run_dir = RunDir.create(tmp, "run")
        self.work = self.run_dir.work.resolve()
        self.run_dir.public.mkdir(parents=True)
        (self.run_dir.public / "train.csv").write_text("x,y\n1,2\n")
        (self.work / DATA_DIR_NAME).mkdir()  # the empty mount point, as bwrap leaves it
        self.events: list[Event] = []
        self.files = WorkFiles(self.work)
        self.sandbox = SimpleNamespace(work_dir=self.work, files=self.files)
        self.tool = editor_tool()
        self.step = 0

    def emit(self, ev: Event) -> Event:
        self.events.append(ev)
        return ev

    def __call__(self, **inp: Any) -> tuple[str, str | None]:
        self.step += 1
        check_input(self.tool, inp)
        ctx = ToolContext(
            run_dir=self.run_dir,
            sandbox=self.sandbox,  # type: ignore[arg-type]
            emit=self.emit,
            step=self.step,
            call_id=f"c{self.step}",
            time_limit_s=10,
        )
        out = self.tool.handler(inp, ctx)
        assert isinstance(out.output, str)
        return out.output, out.error

    def changes(self) -> list[FileChange]:
        return [e for e in self.events if isinstance(e, FileChange)]


@pytest.fixture
def ed(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_the_schema_is_anthropics_shape() -> None:
    assert TOOL_NAME == "str_replace_based_edit_tool"
    props = INPUT_SCHEMA["properties"]
    assert set(props) >= {"command", "path", "view_range", "file_text", "old_str", "new_str"}
    assert {"insert_line", "insert_text"} <= set(props)
    assert editor_tool().anthropic_tool == "text_editor"
    assert editor_tool().schema()["anthropic_tool"] == "text_editor"


def test_create_view_and_the_event(ed: Env) -> None:
    out, err = ed(command="create", path="src/models.py", file_text="import torch\n\nX = 1\n")
    assert err is None and out == "File created successfully at: src/models.py"
    assert (ed.work / "src/models.py").read_text() == "import torch\n\nX = 1\n"
    (ev,) = ed.changes()
    assert (ev.op, ev.path, ev.step, ev.call_id) == ("create", "src/models.py", 1, "c1")
    assert ev.content == "import torch\n\nX = 1\n" and ev.sha256 and ev.size == 20
    out, err = ed(command="view", path="src/models.py")
    assert err is None
    assert out.splitlines()[1:] == ["     1\timport torch", "     2\t", "     3\tX = 1"]
    # absolute paths inside the work directory are the same file
    out, err = ed(command="view", path=str(ed.work / "src" / "models.py"))
    assert err is None and "X = 1" in out
    assert len(ed.changes()) == 1  # views change nothing


def test_view_range(ed: Env) -> None:
    ed(command="create", path="a.txt", file_text="".join(f"line {i}\n" for i in range(1, 11)))
    out, err = ed(command="view", path="a.txt", view_range=[3, 5])
    assert err is None
    assert out.splitlines()[1:] == ["     3\tline 3", "     4\tline 4", "     5\tline 5"]
    out, _ = ed(command="view", path="a.txt", view_range=[9, -1])
    assert out.splitlines()[1:] == ["     9\tline 9", "    10\tline 10"]
    for bad, msg in (
        ([0, 3], "first element `0` should be within the range of lines of the file: [1, 10]"),
        ([5, 3], "should be larger or equal than its first `5`"),
        ([2, 11], "smaller than the number of lines in the file: `10`"),
        ([1], "should be a list of two integers"),
        (["1", "2"], "should be a list of two integers"),
    ):
        out, err = ed(command="view", path="a.txt", view_range=bad)
        assert err is not None and msg in err, (bad, err)


def test_view_a_directory_two_levels_without_hidden(ed: Env) -> None:
    for p in ("a/b/c/deep.py", "a/x.py", "top.py", ".hidden/h.py", "node_modules/m.js"):
        (ed.work / p).parent.mkdir(parents=True, exist_ok=True)
        (ed.work / p).write_text("x\n")
    out, err = ed(command="view", path=".")
    assert err is None
    assert "./a/" in out and "./a/x.py" in out and "./a/b/" in out and "./top.py" in out
    assert "deep.py" not in out and ".hidden" not in out and "node_modules" not in out
    assert DATA_DIR_NAME not in out
    _, err = ed(command="view", path=".", view_range=[1, 2])
    assert err is not None and "not allowed when `path` points to a directory" in err


def test_long_views_are_cut(ed: Env) -> None:
    ed(command="create", path="big.txt", file_text="y" * 100 + "\n" + "z" * 40_000 + "\n")
    out, err = ed(command="view", path="big.txt")
    assert err is None and len(out) < 17_000 and "response clipped" in out and "view_range" in out


def test_create_refuses_an_existing_file_and_a_directory(ed: Env) -> None:
    ed(command="create", path="m.py", file_text="a\n")
    _, err = ed(command="create", path="m.py", file_text="b\n")
    assert err is not None and err.startswith("File already exists at: m.py")
    assert "Cannot overwrite files using command `create`" in err
    assert (ed.work / "m.py").read_text() == "a\n"
    (ed.work / "pkg").mkdir()
    _, err = ed(command="create", path="pkg", file_text="x")
    assert err is not None and "is a directory" in err
    _, err = ed(command="create", path="n.py")
    assert err == "Parameter `file_text` is required for command: create"


def test_str_replace(ed: Env) -> None:
    ed(command="create", path="t.py", file_text="a = 1\nb = 2\nc = 3\nd = 4\n")
    out, err = ed(command="str_replace", path="t.py", old_str="b = 2", new_str="b = 20\nbb = 21")
    assert err is None
    assert (ed.work / "t.py").read_text() == "a = 1\nb = 20\nbb = 21\nc = 3\nd = 4\n"
    assert out.startswith("The file t.py has been edited.")
    assert "     2\tb = 20" in out and "     3\tbb = 21" in out
    ev = ed.changes()[-1]
    assert ev.op == "edit" and ev.step == 2
    rebuilt = apply_diff("a = 1\nb = 2\nc = 3\nd = 4\n", ev.diff) if ev.diff else ev.content
    assert rebuilt == (ed.work / "t.py").read_text()
    # new_str left out: the text is deleted
    _, err = ed(command="str_replace", path="t.py", old_str="bb = 21\n")
    assert err is None and "bb" not in (ed.work / "t.py").read_text()


def test_str_replace_errors(ed: Env) -> None:
    ed(command="create", path="t.py", file_text="x = 1\ny = 1\nx = 1\n")
    n = len(ed.changes())
    _, err = ed(command="str_replace", path="t.py", old_str="z = 9", new_str="q")
    assert err == "No replacement was performed, old_str `z = 9` did not appear verbatim in t.py."
    _, err = ed(command="str_replace", path="t.py", old_str="x = 1", new_str="q")
    assert err == (
        "No replacement was performed. Multiple occurrences of old_str `x = 1` in lines [1, 3]. "
        "Please ensure it is unique"
    )
    _, err = ed(command="str_replace", path="t.py", new_str="q")
    assert err == "Parameter `old_str` is required for command: str_replace"
    _, err = ed(command="str_replace", path="t.py", old_str="", new_str="q")
    assert err is not None and "must not be empty" in err
    _, err = ed(command="str_replace", path="missing.py", old_str="a", new_str="b")
    assert err == "The path missing.py does not exist. Please provide a valid path."
    assert (ed.work / "t.py").read_text() == "x = 1\ny = 1\nx = 1\n"
    assert len(ed.changes()) == n  # failed edits leave no event


def test_insert(ed: Env) -> None:
    ed(command="create", path="i.py", file_text="one\ntwo\n")
    out, err = ed(command="insert", path="i.py", insert_line=0, insert_text="zero")
    assert err is None and (ed.work / "i.py").read_text() == "zero\none\ntwo\n"
    _, err = ed(command="insert", path="i.py", insert_line=3, insert_text="three\nfour\n")
    assert err is None and (ed.work / "i.py").read_text() == "zero\none\ntwo\nthree\nfour\n"
    # older versions of the tool named the text new_str
    _, err = ed(command="insert", path="i.py", insert_line=1, new_str="half")
    assert err is None and (ed.work / "i.py").read_text().splitlines()[1] == "half"
    assert "has been edited" in out
    _, err = ed(command="insert", path="i.py", insert_line=99, insert_text="x")
    assert err == (
        "Invalid `insert_line` parameter: 99. It should be within the range of lines of the "
        "file: [0, 6]"
    )
    _, err = ed(command="insert", path="i.py", insert_text="x")
    assert err is not None and "insert_line" in err
    _, err = ed(command="insert", path="i.py", insert_line=1)
    assert err == "Parameter `insert_text` is required for command: insert"


def test_unknown_commands(ed: Env) -> None:
    _, err = ed(command="undo_edit", path="x")
    assert err is not None and "view, create, str_replace, insert" in err and "undo_edit" in err
    _, err = ed(command="delete", path="x")
    assert err is not None and "Unrecognized command 'delete'" in err


@pytest.mark.parametrize(
    "path",
    ["../escape.py", "/etc/passwd", "a/../../x.py", "/tmp/elsewhere.py"],
)
def test_paths_outside_the_work_directory_are_refused(ed: Env, path: str) -> None:
    _, err = ed(command="create", path=path, file_text="x")
    assert err is not None and "outside the working directory" in err
    _, err = ed(command="view", path=path)
    assert err is not None and "outside the working directory" in err


def test_symlinks_out_and_the_data_folder(ed: Env, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("answers\n")
    os.symlink(outside, ed.work / "link.txt")
    _, err = ed(command="view", path="link.txt")
    assert err is not None and "link to a place outside" in err
    _, err = ed(command="str_replace", path="link.txt", old_str="answers", new_str="x")
    assert err is not None and outside.read_text() == "answers\n"
    # the task's data can be viewed (from where the engine keeps it), never written
    out, err = ed(command="view", path=f"{DATA_DIR_NAME}/train.csv")
    assert err is None and "1,2" in out
    _, err = ed(command="create", path=f"{DATA_DIR_NAME}/new.csv", file_text="x")
    assert err is not None and "read-only" in err
    _, err = ed(command="view", path="")
    assert err is not None and "`path` must be" in err


def test_binary_and_non_utf8_files_are_refused(ed: Env) -> None:
    (ed.work / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (ed.work / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    for path, what in (("blob.bin", "binary file"), ("latin1.txt", "not UTF-8 text")):
        _, err = ed(command="view", path=path)
        assert err is not None and what in err and "UTF-8 text only" in err
        _, err = ed(command="str_replace", path=path, old_str="a", new_str="b")
        assert err is not None and what in err


def test_the_starting_repository_comes_first(ed: Env) -> None:
    """Files there before the first call are reported once, as step None, then the edit."""
    (ed.work / "README.md").write_text("# starter\n")
    ed(command="create", path="main.py", file_text="print(1)\n")
    evs = ed.changes()
    assert [(e.path, e.op, e.step) for e in evs] == [
        ("README.md", "create", None),
        ("main.py", "create", 1),
    ]
