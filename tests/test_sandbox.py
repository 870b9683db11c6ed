"""The Jupyter-kernel sandbox and the python_expression tool.

One kernel is shared by the module (``sb``) where a test does not need a fresh
one; tests that kill or restart it say so and do not rely on earlier state.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agentdeck.engine.bus import EventBus
from agentdeck.engine.events import Artifact, Event, Metric, ToolOutputChunk, WarningEvent
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox import ExecResult, Sandbox, SandboxError, python_expression_tool
from agentdeck.engine.sandbox.env import is_allowed, kernel_env, looks_secret
from agentdeck.engine.sandbox.helpers import log_metric, metric_payload, set_fallback_sink
from agentdeck.engine.sandbox.truncate import (
    CarriageReturns,
    HeadTail,
    omitted_line,
    truncate_middle,
)
from agentdeck.engine.tools import ToolContext

from helpers import wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-not-real",
    "FOO_TOKEN": "tok-not-real",
    "AWS_SECRET_ACCESS_KEY": "aws-not-real",
    "MY_DB_PASSWORD": "hunter2",
}
MEMORY_MB = 1536


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    return RunDir.create(tmp_path_factory.mktemp("sandbox"), "r1")


@pytest.fixture(scope="module")
def sb(run_dir: RunDir) -> Iterator[Sandbox]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in SECRETS.items():
            mp.setenv(k, v)
        mp.setenv("OMP_NUM_THREADS", "1")
        box = Sandbox.for_run(
            run_dir, memory_limit_mb=MEMORY_MB, startup_code="import numpy as np\nSETUP_RAN = 'yes'"
        )
        box.start()
    try:
        yield box
    finally:
        box.shutdown()


def _ctx(
    run_dir: RunDir,
    sb: Sandbox,
    events: list[Event],
    *,
    call_id: str = "toolu_1",
    time_limit_s: float = 30.0,
) -> ToolContext:
    bus = EventBus([events.append])
    return ToolContext(
        run_dir=run_dir,
        sandbox=sb,
        emit=bus.emit,
        step=3,
        call_id=call_id,
        time_limit_s=time_limit_s,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- basics ---------------------------------------------------------------------


def test_variables_persist_and_output_is_captured(sb: Sandbox) -> None:
    r = sb.execute("x = 41\nprint('hello')\nimport sys; print('warn', file=sys.stderr)\nx + 1")
    assert (r.status, r.stdout, r.stderr, r.result, r.error) == (
        "ok",
        "hello\n",
        "warn\n",
        "42",
        None,
    )
    assert r.output_bytes == len("hello\nwarn\n")
    assert sb.execute("x * 2").result == "82"
    assert sb.execute("SETUP_RAN, np.__name__").result == "('yes', 'numpy')"


def test_error_has_name_message_and_plain_traceback(sb: Sandbox) -> None:
    r = sb.execute("print('before')\nundefined_name_xyz")
    assert r.status == "error"
    assert r.stdout == "before\n"
    assert r.error is not None
    assert r.error.startswith("NameError: name 'undefined_name_xyz' is not defined")
    assert "Traceback" in r.error and "\x1b" not in r.error
    assert r.ename == "NameError"
    assert sb.execute("1 + 1").status == "ok"


def test_metric_helper_is_preloaded_and_goes_to_on_metric(sb: Sandbox) -> None:
    got: list[dict] = []
    r = sb.execute(
        "print('a')\nlog_metric('loss', np.float32(0.25), step=7, x=2)\n"
        "from agentdeck.engine.sandbox.helpers import log_metric as lm\nlm('acc', 0.9)",
        on_metric=got.append,
    )
    assert r.status == "ok", r.error
    assert got == [
        {"name": "loss", "value": 0.25, "step": 7, "x": 2.0, "source": "sandbox"},
        {"name": "acc", "value": 0.9, "step": None, "x": None, "source": "sandbox"},
    ]
    assert r.stdout == "a\n" and r.result is None  # never mixed into stdout
    bad = sb.execute("log_metric('loss', 'high')")
    assert bad.status == "error" and "value must be a number" in (bad.error or "")


def test_work_dir_modules_import_and_cwd(sb: Sandbox, run_dir: RunDir) -> None:
    r = sb.execute(
        "open('mymod.py', 'w').write('V = 5\\n')\nimport os, mymod\n(os.getcwd(), mymod.V)"
    )
    assert r.result == repr((str(run_dir.work.resolve()), 5))


def test_output_arrives_live_in_chunks(sb: Sandbox) -> None:
    seen: list[tuple[float, str, str]] = []
    r = sb.execute(
        "import time\nfor i in range(4):\n    print('tick', i, flush=True)\n    time.sleep(0.3)",
        on_output=lambda stream, text: seen.append((time.monotonic(), stream, text)),
    )
    end = time.monotonic()
    assert r.status == "ok"
    assert "".join(t for _, _, t in seen) == "".join(f"tick {i}\n" for i in range(4))
    early = [c for c in seen if c[0] < end - 0.25]
    assert len(early) >= 2, seen  # at least two chunks well before the call ended


def test_kernel_channels_use_ipc_not_tcp(sb: Sandbox) -> None:
    assert sb.pid is not None
    conns = psutil.Process(sb.pid).net_connections(kind="all")
    ipc = {c.laddr for c in conns if c.family == socket.AF_UNIX and c.laddr}
    assert len({os.path.basename(p) for p in ipc}) == 5  # shell, iopub, stdin, control, hb
    # the only TCP socket is ipykernel's own loopback pipe for output of forked children
    inet = [c for c in conns if c.family in (socket.AF_INET, socket.AF_INET6)]
    assert len(inet) <= 1 and all(c.laddr.ip == "127.0.0.1" for c in inet)


# -- interrupts and time limits -------------------------------------------------------


def test_timeout_interrupts_and_keeps_variables(sb: Sandbox) -> None:
    sb.execute("kept = 'still here'")
    r = sb.execute("print('started')\nwhile True: pass", timeout=1.0)
    assert r.status == "timeout" and r.interrupted and not r.restarted
    assert r.stdout == "started\n"
    assert "Execution interrupted after 1 s (time limit)" in (r.error or "")
    assert "Variables defined before the interruption are kept" in (r.error or "")
    assert sb.execute("kept").result == "'still here'"


def test_interrupt_from_another_thread(sb: Sandbox) -> None:
    sb.execute("before = 1")
    started = threading.Event()
    result: list[ExecResult] = []

    def run() -> None:
        result.append(
            sb.execute(
                "import time\nprint('running', flush=True)\nwhile True: time.sleep(0.01)",
                on_output=lambda s, t: started.set(),
            )
        )

    sb.execute("None")
    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(10), "the call never started running"
    sb.interrupt()
    worker.join(timeout=10)
    assert not worker.is_alive()
    r = result[0]
    assert r.interrupted and not r.restarted and r.status == "error"
    assert "interrupted" in (r.error or "")
    assert sb.execute("before").result == "1"
    sb.interrupt()  # nothing running: a no-op
    assert sb.execute("before + 1").result == "2"


def test_stop_flag_set_before_the_call_interrupts_it(sb: Sandbox) -> None:
    stop = threading.Event()
    stop.set()
    r = sb.execute("import time\ntime.sleep(20)", stop=stop)
    assert r.interrupted and r.duration_s < 10


def test_code_that_ignores_interrupt_gets_a_restart(sb: Sandbox) -> None:
    sb.interrupt_grace_s = 1.0
    try:
        r = sb.execute(
            "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "gone = 1\ntime.sleep(30)",
            timeout=0.5,
        )
    finally:
        sb.interrupt_grace_s = 3.0
    assert r.status == "timeout" and r.restarted and r.interrupted
    assert "all variables are gone" in (r.error or "")
    assert sb.execute("gone").ename == "NameError"
    assert sb.execute("SETUP_RAN").result == "'yes'"  # setup code ran again


# -- death and restart --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import os\nos._exit(1)", "exited with status 1"),
        ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
    ],
    ids=["os_exit", "segfault"],
)
def test_dead_kernel_is_restarted_and_the_agent_told(sb: Sandbox, code: str, why: str) -> None:
    sb.execute("doomed = 1")
    old_pid = sb.pid
    r = sb.execute(code)
    assert r.status == "died" and r.restarted
    assert why in (r.error or "")
    assert "restarted: all variables are gone; re-run your setup" in (r.error or "")
    assert sb.pid is not None and sb.pid != old_pid
    assert sb.execute("doomed").ename == "NameError"
    assert sb.execute("SETUP_RAN, 6 * 7").result == "('yes', 42)"


# -- isolation and limits -------------------------------------------------------------------


def test_environment_is_scrubbed(sb: Sandbox, run_dir: RunDir) -> None:
    r = sb.execute(
        "import os, tempfile\n"
        "(sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k or 'PASS' in k),"
        " os.environ['HOME'], os.environ['TMPDIR'], tempfile.gettempdir(),"
        " os.path.expanduser('~'), os.environ.get('OMP_NUM_THREADS'))"
    )
    assert r.status == "ok", r.error
    names, home, tmpdir, gettemp, expanded, omp = eval(r.result or "")
    assert names == []
    # local backend: HOME and TMPDIR are private to the sandbox, beside its work dir and
    # outside the run directory (so ../events.jsonl is not next door)
    for path in (home, tmpdir, gettemp, expanded):
        assert Path(path).is_relative_to(sb.work_dir.parent)
        assert not Path(path).is_relative_to(run_dir.path)
    assert omp == "1"
    for value in SECRETS.values():
        assert (
            sb.execute(f"any({value!r} in v for v in __import__('os').environ.values())").result
            == "False"
        )


def test_env_rules() -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "FOO_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "GH_PAT",
        "DB_PASSWORD",
        "SSH_AUTH_SOCK",
        "my_private_thing",
        "OMP_API_KEY",
    ):
        assert looks_secret(name) and not is_allowed(name), name
    for name in (
        "PATH",
        "LANG",
        "LC_ALL",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
        "PYTHONHASHSEED",
    ):
        assert is_allowed(name), name
    assert not is_allowed("SOME_RANDOM_VAR")
    env = kernel_env(
        home_dir=Path("/r/home"),
        tmp_dir=Path("/r/tmp"),
        parent={"PATH": "/bin", "OPENAI_API_KEY": "x", "EDITOR": "vi"},
        extra={"TASK_MODE": "fast"},
    )
    assert env["PATH"] == "/bin" and env["TASK_MODE"] == "fast"
    assert env["HOME"] == "/r/home" and env["TMPDIR"] == "/r/tmp"
    assert "OPENAI_API_KEY" not in env and "EDITOR" not in env
    with pytest.raises(ValueError, match="HF_TOKEN"):
        Sandbox(Path("w"), home_dir=Path("h"), tmp_dir=Path("t"), extra_env={"HF_TOKEN": "x"})


def test_memory_limit_gives_memory_error_and_torch_still_imports(sb: Sandbox) -> None:
    assert sb.limits()["memory_limit_mb"] == MEMORY_MB
    r = sb.execute(
        "import torch\nsmall = torch.ones(256, 256) @ torch.ones(256, 256)\nfloat(small[0, 0])"
    )
    assert r.status == "ok", r.error
    assert r.result == "256.0"
    sb.execute("survivor = 3")
    r = sb.execute(f"big = np.ones({2 * MEMORY_MB} * 2**20 // 8)")
    assert r.status == "error" and r.ename == "MemoryError", r.error
    r = sb.execute(f"t = torch.empty({2 * MEMORY_MB} * 2**20 // 4)")
    assert r.status == "error" and "allocate" in (r.error or ""), r.error
    assert sb.execute("survivor").result == "3"  # no restart needed


def test_cpu_time_limit_ends_a_runaway_kernel(tmp_path: Path) -> None:
    box = Sandbox.for_run(RunDir.create(tmp_path, "r1"), cpu_time_limit_s=2)
    try:
        box.start()
        assert box.limits()["cpu_time_limit_s"] == 2
        r = box.execute("while True: pass", timeout=30)
        assert r.status == "died" and r.restarted
        assert "CPU time limit" in (r.error or "")
        assert box.execute("1 + 1").result == "2"  # a fresh kernel, a fresh budget
    finally:
        box.shutdown()


def test_shutdown_leaves_no_process(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path, "r1")
    box = Sandbox.for_run(rd)
    box.start()
    kernel_pid = box.pid
    assert kernel_pid is not None
    r = box.execute("import subprocess\np = subprocess.Popen(['sleep', '60'])\np.pid")
    child = int(r.result or "0")
    assert psutil.Process(child).ppid() == kernel_pid
    box.shutdown()
    wait_for(lambda: _gone(kernel_pid) and _gone(child), "the kernel and its child to end", 5)
    assert box.pid is None
    box.shutdown()  # idempotent
    with pytest.raises(SandboxError, match="shut down"):
        box.execute("1")


ENGINE = """
import sys, time
from pathlib import Path
from agentdeck.engine.sandbox import Sandbox
box = Sandbox(Path(sys.argv[1]) / "w", home_dir=Path(sys.argv[1]) / "h",
              tmp_dir=Path(sys.argv[1]) / "t")
box.start()
r = box.execute("import subprocess\\nsubprocess.Popen(['sleep', '60']).pid")
print(box.pid, r.result, box._kernel.conn_dir, flush=True)
time.sleep(60)
"""


def test_engine_killed_takes_kernel_and_children_down(tmp_path: Path) -> None:
    import subprocess

    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert engine.stdout is not None
        kernel, child_pid, conn = engine.stdout.readline().split()
        kernel_pid, child = int(kernel), int(child_pid)
        assert Path(conn).is_dir()
        assert not _gone(kernel_pid) and not _gone(child)
    finally:
        engine.kill()  # SIGKILL: no atexit, no shutdown()
        engine.wait()
    wait_for(lambda: _gone(kernel_pid) and _gone(child), "the kernel and its child to end")
    assert not Path(conn).exists()  # the private socket directory is cleaned up too


def test_start_failures_say_what_to_do(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path, "r1")
    with pytest.raises(SandboxError, match="interpreter exists"):
        Sandbox.for_run(rd, python=str(tmp_path / "no-such-python")).start()
    box = Sandbox.for_run(rd, startup_code="import no_such_module_xyz")
    with pytest.raises(SandboxError, match=r"(?s)setup code failed.*No module named"):
        box.start()
    assert box.pid is None  # nothing left running
    box.shutdown()


# -- the helper outside a kernel -----------------------------------------------------------


def test_log_metric_outside_a_kernel() -> None:
    assert log_metric("loss", 0.5, step=1) is None  # no kernel: nothing happens
    got: list[dict] = []
    set_fallback_sink(got.append)
    try:
        log_metric("loss", 0.5, step=1, x=0.5)
    finally:
        set_fallback_sink(None)
    assert got == [{"name": "loss", "value": 0.5, "step": 1, "x": 0.5, "source": "sandbox"}]
    with pytest.raises(TypeError, match="source must be one of"):
        log_metric("m", 1.0, source="elsewhere")
    assert metric_payload("m", float("nan"))["value"] is None
    with pytest.raises(TypeError, match="name must be"):
        log_metric("", 1.0)
    with pytest.raises(TypeError, match="step must be a whole number"):
        log_metric("m", 1.0, step=1.5)


# -- truncation ------------------------------------------------------------------------------


def test_truncation_keeps_head_and_tail_with_exact_count() -> None:
    text = "start\n" + "é" * 50_000 + "\nend"
    out, dropped = truncate_middle(text, 1000)
    assert len(out.encode()) <= 1000
    assert out.startswith("start\n") and out.endswith("\nend")
    line = omitted_line(dropped)
    assert line in out
    assert dropped == len(text.encode()) - (len(out.encode()) - len(line.encode()))
    assert truncate_middle("short", 1000) == ("short", 0)
    cr = CarriageReturns(max_pending=50)
    shown = "".join(cr.feed(f"\r{i:3d}%") for i in range(101)) + cr.feed("\nnext\r\n") + cr.flush()
    assert shown == "100%\nnext\n"
    acc = HeadTail(100)
    for i in range(1000):
        acc.write(f"{i}\n")
    out, dropped = acc.render()
    assert out.startswith("0\n1\n") and out.endswith("998\n999\n")
    assert dropped == acc.total_bytes - (len(out.encode()) - len(omitted_line(dropped).encode()))


# -- the python_expression tool -------------------------------------------------------------------


def test_tool_output_shape_like_the_seed(sb: Sandbox, run_dir: RunDir) -> None:
    events: list[Event] = []
    tool = python_expression_tool()
    assert tool.name == "python_expression"
    assert tool.input_schema["required"] == ["code"]
    out = tool.handler({"code": "print('shape:', (3, 4))\n7 * 6"}, _ctx(run_dir, sb, events))
    assert out.output == {"result": "shape: (3, 4)\n42", "error": None}
    assert out.error is None and out.truncated_bytes == 0
    chunks = [e for e in events if isinstance(e, ToolOutputChunk)]
    assert "".join(c.text for c in chunks) == "shape: (3, 4)\n"
    assert all(c.call_id == "toolu_1" and c.step == 3 for c in chunks)
    out = tool.handler({"code": "print('no newline', end='')\n5"}, _ctx(run_dir, sb, events))
    assert out.output["result"] == "no newline\n5"
    bar = "import sys\nfor i in range(200):\n    sys.stderr.write(f'\\r{i:3d}/199')\nprint(file=sys.stderr)\n'ok'"
    out = tool.handler({"code": bar}, _ctx(run_dir, sb, events))
    assert out.output["result"] == "199/199\n'ok'"  # the progress bar's last state only
    err = tool.handler({"code": "1/0"}, _ctx(run_dir, sb, events))
    assert err.error is not None and err.error.startswith("ZeroDivisionError: division by zero")
    assert err.output["error"] == err.error


def test_tool_metrics_become_metric_events(sb: Sandbox, run_dir: RunDir) -> None:
    events: list[Event] = []
    code = (
        "for epoch in range(3):\n    log_metric('val_f1', 0.5 + epoch / 10, x=epoch)\n"
        "log_metric('train_loss', 1.5, step=10, source='trainer')"
    )
    out = python_expression_tool().handler({"code": code}, _ctx(run_dir, sb, events))
    assert out.error is None
    metrics = [e for e in events if isinstance(e, Metric)]
    assert [(m.name, m.value, m.x, m.step, m.source) for m in metrics] == [
        ("val_f1", 0.5, 0.0, 3, "sandbox"),
        ("val_f1", 0.6, 1.0, 3, "sandbox"),
        ("val_f1", 0.7, 2.0, 3, "sandbox"),
        ("train_loss", 1.5, 10.0, 3, "trainer"),  # x falls back to the training step
    ]
    assert out.output["result"] == ""


def test_tool_saves_figures_as_artifacts(sb: Sandbox, run_dir: RunDir) -> None:
    events: list[Event] = []
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    code = (
        "import base64\nfrom IPython.display import display\n"
        f"display({{'image/png': base64.b64encode({png!r}).decode(), 'text/plain': 'fig'}},"
        " raw=True)"
    )
    out = python_expression_tool().handler(
        {"code": code}, _ctx(run_dir, sb, events, call_id="toolu_fig")
    )
    assert out.error is None and out.output["result"] == ""
    arts = [e for e in events if isinstance(e, Artifact)]
    assert [(a.path, a.mime) for a in arts] == [("artifacts/toolu_fig-1.png", "image/png")]
    assert (run_dir.path / arts[0].path).read_bytes() == png


def test_tool_timeout_and_restart_messages(sb: Sandbox, run_dir: RunDir) -> None:
    events: list[Event] = []
    tool = python_expression_tool()
    out = tool.handler({"code": "while True: pass"}, _ctx(run_dir, sb, events, time_limit_s=0.5))
    assert out.error == (
        "Execution interrupted after 0.5 s (time limit). "
        "Variables defined before the interruption are kept."
    )
    out = tool.handler({"code": "import os; os._exit(3)"}, _ctx(run_dir, sb, events))
    assert out.error is not None and "all variables are gone" in out.error
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert [w.code for w in warnings] == ["kernel_restart"]


def test_tool_huge_output_is_truncated_for_the_model_and_bounded_in_the_log(
    sb: Sandbox, run_dir: RunDir
) -> None:
    events: list[Event] = []
    cap = 1 << 20
    limit = 16 * 1024
    code = (
        "import sys\nsys.stdout.write('START\\n')\n"
        "for i in range(50):\n    sys.stdout.write(chr(97 + i % 26) * (1 << 20))\n"
        "_ = sys.stdout.write('\\nEND')"
    )
    total = 6 + 50 * (1 << 20) + 4
    tool = python_expression_tool(model_output_limit=limit, log_output_cap=cap)
    out = tool.handler({"code": code}, _ctx(run_dir, sb, events, call_id="toolu_big"))
    assert out.error is None
    result = out.output["result"]
    assert len(result.encode()) <= limit
    assert result.startswith("START\naaaa") and result.endswith("xxxx\nEND")
    m = re.search(r"\n\[\.\.\. ([\d,]+) bytes of output omitted \.\.\.\]\n", result)
    assert m is not None
    dropped = int(m.group(1).replace(",", ""))
    assert dropped == out.truncated_bytes
    assert dropped == total - (len(result.encode()) - len(m.group(0).encode()))
    # the log: chunks stop at the cap, the artifact has everything
    streamed = sum(len(e.text.encode()) for e in events if isinstance(e, ToolOutputChunk))
    assert 0 < streamed <= cap
    arts = [e for e in events if isinstance(e, Artifact)]
    assert len(arts) == 1 and arts[0].path == "artifacts/toolu_big.out"
    assert arts[0].mime == "text/plain" and arts[0].step == 3
    path = run_dir.path / arts[0].path
    assert path.stat().st_size == total
    with open(path, "rb") as f:
        assert f.read(10) == b"START\naaaa"
        f.seek(-8, os.SEEK_END)
        assert f.read() == b"xxxx\nEND"
    assert any(isinstance(e, WarningEvent) and e.code == "output_capped" for e in events)


def test_tool_without_sandbox_or_when_stopping(sb: Sandbox, run_dir: RunDir) -> None:
    events: list[Event] = []
    tool = python_expression_tool()
    ctx = _ctx(run_dir, sb, events)
    ctx.sandbox = None
    assert "no Python sandbox" in (tool.handler({"code": "1"}, ctx).error or "")
    ctx = _ctx(run_dir, sb, events)
    ctx.stop.set()
    assert "stopped" in (tool.handler({"code": "1"}, ctx).error or "")
