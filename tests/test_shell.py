"""The persistent bash session and the ``bash`` tool, under each isolation backend:
state between calls, streaming, the time limit (the session survives), interrupts,
restart, a shell that exits, huge and non-UTF-8 output, no stdin, file_change events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentdeck.engine.events import Artifact, Event, FileChange, ToolOutputChunk, WarningEvent
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox import Sandbox
from agentdeck.engine.sandbox.bash_tool import bash_tool
from agentdeck.engine.sandbox.isolation import Isolation, bwrap_problem, choose
from agentdeck.engine.tools import ToolContext

BWRAP = bwrap_problem()
BACKENDS = [
    "local",
    pytest.param("bwrap", marks=pytest.mark.skipif(BWRAP is not None, reason=str(BWRAP))),
]
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=BACKENDS)
def sb(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-NOT-FOR-THE-SANDBOX")
    backend, _ = choose(request.param)
    run_dir = RunDir.create(tmp_path / "logs", "run")
    box = Sandbox.for_run(run_dir, backend=backend, isolation=Isolation(memory_mb=2048))
    box.prepare_limits()
    box.run_dir = run_dir  # type: ignore[attr-defined]
    yield box
    box.shutdown()


def test_state_persists_between_calls(sb: Sandbox) -> None:
    sh = sb.shell()
    r = sh.run("mkdir -p sub && cd sub && export FOO=bar && greet() { echo hi $1; }")
    assert (r.status, r.exit_code, r.error) == ("ok", 0, None)
    r = sh.run('pwd; echo "$FOO"; greet you')
    lines = r.stdout.splitlines()
    assert lines[0].endswith("/work/sub") and lines[1:] == ["bar", "hi you"]
    r = sh.run("echo out; echo err >&2; false")
    assert (r.stdout, r.stderr, r.exit_code) == ("out\n", "err\n", 1)
    r = sh.run("printf 'no newline'")
    assert r.stdout == "no newline"


def test_output_streams_while_the_command_runs(sb: Sandbox) -> None:
    """The command waits for a file that only the output callback creates: it finishes
    only if its first line arrived while it was still running."""
    go = Path(sb.work_dir) / "go"

    def on_output(stream: str, text: str) -> None:
        if "ready" in text:
            go.write_text("1")

    r = sb.shell().run(
        "echo ready; for i in $(seq 200); do [ -f go ] && break; sleep 0.05; done; "
        "[ -f go ] && echo streamed",
        timeout=60,
        on_output=on_output,
    )
    assert r.stdout == "ready\nstreamed\n"


def test_the_time_limit_interrupts_and_keeps_the_session(sb: Sandbox) -> None:
    sh = sb.shell()
    r = sh.run("KEEP=1; cd /tmp; sleep 30; echo not-reached", timeout=1)
    assert r.status == "timeout" and not r.restarted
    assert "not-reached" not in r.stdout and r.exit_code == 130
    assert r.error is not None and "after 1 s" in r.error and "session is kept" in r.error
    r = sh.run("echo $KEEP; pwd")
    assert r.stdout == "1\n/tmp\n"


def test_an_interrupt_before_the_command_starts_still_stops_it(sb: Sandbox) -> None:
    """A stop that comes while bash is still reading the command (the run stopped at that
    moment, or a loaded machine) is held until the command runs under its trap: it was
    spent on the reading, and the command then ran on to its end."""
    sh = sb.shell()
    sh.interrupt_grace_s = 5.0  # a lost SIGINT shows as a wait for SIGTERM, 5 s later
    for _ in range(3):
        stop = threading.Event()
        stop.set()
        r = sh.run("sleep 20; echo not-reached", stop=stop)
        assert r.status == "interrupted" and not r.restarted, r
        assert "not-reached" not in r.stdout and r.duration_s < 4.5, r
    assert sh.run("echo fine").stdout == "fine\n"


def test_the_start_marker_is_stripped_wherever_it_comes_and_is_not_needed() -> None:
    """stderr's start marker is cut out even after other text (the launcher's notes) or
    split across reads; a call interrupted before it printed still ends at its end marker."""
    from agentdeck.engine.sandbox.shell import _Stream

    end = b"\n__AGENTDECK_DONE_t"

    def feed(*chunks: bytes) -> tuple[str, bool, bool]:
        s = _Stream("stderr", end + b"\n", start=b"__AGENTDECK_START_t\n")
        return "".join(s.feed(c) for c in chunks), s.started, s.done

    assert feed(b"note\n__AGENTDE", b"CK_START_t\nerr\n", end + b"\n") == (
        "note\nerr\n",
        True,
        True,
    )
    assert feed(b"a_", b"_AGENTDECK_START_t\nb", end[:5], end[5:] + b"\n") == ("ab", True, True)
    assert feed(end + b"\n") == ("", False, True)


def test_a_python_program_gets_keyboard_interrupt(sb: Sandbox) -> None:
    code = (
        "import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n"
        "    print('caught', flush=True)\n"
    )
    (Path(sb.work_dir) / "slow.py").write_text(code)
    r = sb.shell().run("python slow.py; echo after", timeout=1)
    assert r.status == "timeout" and "caught" in r.stdout and "after" not in r.stdout


def test_a_builtin_loop_and_an_ignored_sigint_are_stopped(sb: Sandbox) -> None:
    sh = sb.shell()
    sh.run("X=kept")
    r = sh.run("while :; do :; done", timeout=1)
    assert r.status == "timeout" and not r.restarted
    r = sh.run("trap '' INT; sleep 30", timeout=1)  # SIGINT ignored: SIGTERM ends it
    assert r.status == "timeout" and not r.restarted and r.exit_code == 143
    assert sh.run("echo $X").stdout == "kept\n"


def test_interrupt_from_another_thread(sb: Sandbox) -> None:
    stop = threading.Event()

    def on_output(stream: str, text: str) -> None:
        if "started" in text:
            stop.set()

    r = sb.shell().run("echo started; sleep 30", on_output=on_output, stop=stop)
    assert r.status == "interrupted" and r.error is not None and "being stopped" in r.error


def test_restart_and_a_shell_that_exits(sb: Sandbox) -> None:
    sh = sb.shell()
    sh.run("V=1")
    sh.restart()
    assert sh.run("echo ${V:-gone}").stdout == "gone\n"
    sh.run("V=2")
    r = sh.run("exit 3")
    assert r.status == "exited" and r.restarted and "status 3" in (r.error or "")
    r = sh.run("echo ${V:-fresh}")
    assert (r.status, r.stdout) == ("ok", "fresh\n")


def test_no_stdin_huge_and_binary_output(sb: Sandbox) -> None:
    sh = sb.shell()
    r = sh.run("cat; echo done", timeout=10)  # reads nothing: stdin is empty
    assert (r.status, r.stdout) == ("ok", "done\n")
    r = sh.run("head -c 3000000 /dev/zero | tr '\\0' a")
    assert r.output_bytes == 3_000_000 and r.stdout == "a" * 3_000_000
    r = sh.run("printf 'ok \\xff\\xfe end\\n'")
    assert r.stdout == "ok \ufffd\ufffd end\n"
    # 2-byte characters across every read boundary decode whole
    r = sh.run("python -c \"print('é' * 100000)\"")
    assert r.stdout == "é" * 100000 + "\n"


def test_runs_inside_the_sandbox(sb: Sandbox) -> None:
    r = sb.shell().run(
        "env | grep -c ANTHROPIC || true; id -u; "
        'python -c "import sys, agentdeck.engine.trainer; print(sys.executable)"'
    )
    count, uid, exe = r.stdout.split()
    assert count == "0"  # the key never reaches the shell
    assert exe == sb.python or Path(exe).resolve() == Path(sb.python).resolve()
    if sb.backend.isolated:
        assert uid == "65534"


def test_nothing_outlives_the_sandbox(sb: Sandbox) -> None:
    sh = sb.shell()
    sh.run("sleep 300 & echo $! > bg.pid")
    tree = sh.tree_pids()
    assert tree
    sb.shutdown()
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []


# -- the tool -------------------------------------------------------------------------------


class Ctx:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.events: list[Event] = []
        self.step = 0

    def call(self, **inp: Any) -> tuple[Any, str | None, int]:
        self.step += 1
        ctx = ToolContext(
            run_dir=self.sb.run_dir,  # type: ignore[attr-defined]
            sandbox=self.sb,
            emit=lambda e: self.events.append(e) or e,  # type: ignore[func-returns-value]
            step=self.step,
            call_id=f"call{self.step}",
            time_limit_s=5,
        )
        out = bash_tool(model_output_limit=2048, log_output_cap=10_000).handler(inp, ctx)
        return out.output, out.error, out.truncated_bytes

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def test_the_tool(sb: Sandbox) -> None:
    t = Ctx(sb)
    out, err, _ = t.call(command="echo hello; echo oops >&2")
    # two pipes: stdout and stderr interleave as they arrive, not strictly in order
    assert err is None and sorted(out.splitlines()) == ["hello", "oops"]
    chunks = t.of(ToolOutputChunk)
    streamed = {s: "".join(c.text for c in chunks if c.stream == s) for s in ("stdout", "stderr")}
    assert streamed == {"stdout": "hello\n", "stderr": "oops\n"}
    out, err, _ = t.call(command="ls nothing-here")
    assert err is None and out.rstrip().endswith("[exit status 2]")
    out, err, _ = t.call(command="true")
    assert out == "(no output)"
    out, err, _ = t.call(command="sleep 20")
    assert err is not None and "interrupted after 5 s" in err and "session is kept" in err
    out, err, _ = t.call(restart=True)
    assert (out, err) == ("The bash session has been restarted.", None)
    out, err, _ = t.call(command="   ")
    assert err is not None and "give a `command`" in err


def test_the_tool_truncates_for_the_model_and_spills_to_an_artifact(sb: Sandbox) -> None:
    t = Ctx(sb)
    out, err, dropped = t.call(command="seq 1 100000")
    assert err is None and dropped > 500_000
    assert out.startswith("1\n2\n") and out.rstrip().endswith("100000")
    assert "bytes of output omitted" in out and len(out.encode()) <= 2048
    (art,) = t.of(Artifact)
    full = (sb.run_dir.path / art.path).read_text()  # type: ignore[attr-defined]
    assert full.splitlines()[-1] == "100000" and len(full.splitlines()) == 100000
    assert any(w.code == "output_capped" for w in t.of(WarningEvent))
    assert sum(len(c.text) for c in t.of(ToolOutputChunk)) <= 10_000


def test_the_tool_reports_file_changes(sb: Sandbox) -> None:
    (Path(sb.work_dir) / "starter.py").write_text("x = 1\n")
    t = Ctx(sb)
    t.call(command="printf 'a\\nb\\n' > notes.txt && mkdir -p out && echo 1 > out/r.txt")
    t.call(
        command="echo c >> notes.txt && rm out/r.txt && mkdir -p __pycache__ && "
        "echo junk > __pycache__/m.pyc && head -c 100 /dev/urandom > w.npy"
    )
    evs = [(e.path, e.op, e.step) for e in t.of(FileChange)]
    assert evs == [
        ("starter.py", "create", None),  # the starting repository
        ("notes.txt", "create", 1),
        ("out/r.txt", "create", 1),
        ("notes.txt", "edit", 2),
        ("out/r.txt", "delete", 2),
    ]
    edit = t.of(FileChange)[3]
    assert edit.call_id == "call2" and (edit.diff or edit.content)


def test_the_work_limit_interrupts(tmp_path: Path) -> None:
    backend, _ = choose("local")
    run_dir = RunDir.create(tmp_path / "logs", "run")
    box = Sandbox.for_run(run_dir, backend=backend, isolation=Isolation(work_mb=1))
    try:
        r = box.shell().run(
            "for i in $(seq 100); do head -c 200000 /dev/zero > f$i.dat; sleep 0.1; done",
            timeout=60,
        )
        assert r.status == "work_limit" and "past its limit of 1 MiB" in (r.error or "")
    finally:
        box.shutdown()
