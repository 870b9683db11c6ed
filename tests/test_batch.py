"""``agentdeck batch`` end to end: real worker processes, sandboxes, logs and summaries.

The grid runs are small: scikit-learn's digits with 300 training samples and 2
epochs for the real task (local and on Ray), and the tiny tasks of
``batch_tasks.py`` (registered through a throwaway dist-info folder, as a
third-party package would be) for resume, errors, Ctrl-C and the shared backoff.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from agentdeck.engine.batch import BatchDir, BatchOptions, BatchRunner, RayExecutor, open_batch
from agentdeck.engine.batch.backoff import FileBackoff
from agentdeck.engine.batch.grid import RunLimits, grid_from_cli
from agentdeck.engine.batch.manifest import SUMMARY_JSON
from agentdeck.engine.batch.stats import pass_at_k, wilson
from agentdeck.engine.log import RunLog
from agentdeck.tui.cli import app

import batch_tasks
from doubles import eventually, until
from mock_anthropic import Fault, MockAnthropic, Reply

pytestmark = pytest.mark.timeout(600)
TESTS = Path(__file__).resolve().parent
EXE = Path(sys.executable).parent / "agentdeck"
DIGITS = ["-T", "dataset=digits", "-T", "n_train=300"]


@pytest.fixture(scope="session")
def batch_env(tmp_path_factory):
    """Register the tasks of batch_tasks.py for this process and its children."""
    site = tmp_path_factory.mktemp("site")
    info = site / "agentdeck_test_tasks-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: agentdeck-test-tasks\nVersion: 0\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in batch_tasks.ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text("[agentdeck.tasks]\n" + lines)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (str(site), str(TESTS), old) if x)
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXE), "batch", *args], capture_output=True, text=True, timeout=400, **kw
    )


def start_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(EXE), "batch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def only_batch(log_dir: Path) -> BatchDir:
    found = [p for p in log_dir.iterdir() if (p / "manifest.json").is_file()]
    assert len(found) == 1, found
    return BatchDir(found[0])


def wait_for(cond, timeout: float = 120.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pids(bd: BatchDir) -> list[psutil.Process]:
    """The live worker processes of a batch (the journal records their pids)."""
    out = []
    for entry in bd.read_journal():
        if entry.get("kind") == "start" and entry.get("pid"):
            try:
                p = psutil.Process(entry["pid"])
            except psutil.NoSuchProcess:
                continue
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def gone(procs: list[psutil.Process]) -> bool:
    def alive(p):
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return not any(alive(p) for p in procs)


def logs_saying(bd: BatchDir, text: str) -> list[Path]:
    out = []
    for p in bd.path.glob("*/events.jsonl"):
        try:
            if text in p.read_text():
                out.append(p)
        except OSError:
            pass
    return out


def check_summary_against_logs(bd: BatchDir) -> dict:
    """Recompute every figure of summary.json from the individual logs."""
    summary = json.loads((bd.path / SUMMARY_JSON).read_text())
    manifest = bd.read_manifest()
    by_config: dict[str, list] = {}
    for spec in manifest.runs:
        log = RunLog.open(bd.run_path(spec.run_id) / "events.jsonl")
        assert log.end is not None, spec.run_id
        by_config.setdefault(spec.config, []).append((spec, log))
    for c in summary["configs"]:
        runs = by_config[c["config"]]
        evaluated = [log for _, log in runs if log.status != "error"]
        passed = sum(1 for log in evaluated if log.grade.passed)
        n = len(evaluated)
        assert (c["runs"], c["evaluated"], c["passed"]) == (len(runs), n, passed)
        assert c["pass_rate"] == pytest.approx(passed / n)
        assert c["pass_rate_ci95"] == pytest.approx(list(wilson(passed, n)))
        for k in range(1, manifest.epochs + 1):
            assert c["pass_at_k"][str(k)] == pytest.approx(pass_at_k(n, passed, k))
        for name, st in c["metrics"].items():
            values = [log.grade.metrics[name] for log in evaluated if log.grade.submitted]
            assert st["n"] == len(values)
            assert st["mean"] == pytest.approx(sum(values) / len(values))
        tot = [log.totals() for _, log in runs]
        assert c["tokens"]["input"] == sum(t.input_tokens for t in tot)
        assert c["tokens"]["output"] == sum(t.output_tokens for t in tot)
        assert c["cost_usd"] == pytest.approx(sum(t.cost_usd for t in tot))
        assert c["steps"]["mean"] == pytest.approx(sum(t.steps for t in tot) / len(tot))
        # each epoch's seed: in the manifest, hidden from the agent, revealed in the grade
        for spec, log in runs:
            assert log.header.task_params["seed"] == "hidden until grading"
            assert log.grade.details["revealed"]["seed"] == spec.seed
            assert spec.seed == manifest.seed_base + spec.epoch
    return summary


# -- the real task, locally ---------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_batch(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    r = cli(
        [
            "noisy-labels",
            *DIGITS,
            "--epochs",
            "2",
            "-j",
            "2",
            "--seed-base",
            "40",
            "--json",
            "--log-dir",
            str(log_dir),
        ]
    )
    return r, log_dir


def test_local_batch_summary_matches_the_logs(digits_batch):
    r, log_dir = digits_batch
    assert r.returncode == 0, r.stderr  # every run was graded
    bd = only_batch(log_dir)
    summary = check_summary_against_logs(bd)
    assert summary["runs"] == 2 and summary["errors"] == 0
    # one ordinary run directory a run
    assert sorted(p.name for p in bd.path.iterdir() if (p / "events.jsonl").exists()) == [
        "noisy-labels-c1-e0",
        "noisy-labels-c1-e1",
    ]
    csv = (bd.path / "summary.csv").read_text().splitlines()
    assert csv[0].startswith("config,label,task,agent,model,params,runs,evaluated,passed")
    assert "pass@2" in csv[0] and "f1_mean" in csv[0] and len(csv) == 2


def test_json_events(digits_batch):
    r, _ = digits_batch
    events = [json.loads(line) for line in r.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "batch_start" and types[-1] == "batch_end"
    assert types.count("run_started") == 2 and types.count("run_ended") == 2
    ended = [e for e in events if e["type"] == "run_ended"]
    assert all(e["status"] == "completed" and "f1" in e["metrics"] for e in ended)
    assert {e["seed"] for e in ended} == {40, 41}
    assert events[-1]["summary"]["configs"][0]["runs"] == 2


def test_report_prints_the_summary_again(digits_batch):
    _, log_dir = digits_batch
    bd = only_batch(log_dir)
    r = cli(["--report", str(bd.path)])
    assert r.returncode == 0, r.stderr
    assert "pass rate [95% CI]" in r.stdout and "pass@2" in r.stdout and "f1" in r.stdout
    r = cli(["--report", str(bd.path), "--json"])
    again = json.loads(r.stdout)
    stored = json.loads((bd.path / SUMMARY_JSON).read_text())
    assert again["configs"] == stored["configs"]


def test_the_same_command_resumes_a_finished_batch(digits_batch):
    _r, log_dir = digits_batch
    before = {p: p.stat().st_mtime for p in log_dir.glob("*/*/events.jsonl")}
    again = cli(
        [
            "noisy-labels",
            *DIGITS,
            "--epochs",
            "2",
            "-j",
            "2",
            "--seed-base",
            "40",
            "--no-ui",
            "--log-dir",
            str(log_dir),
        ]
    )
    assert again.returncode == 0, again.stderr
    assert "2 run(s) kept, 0 to run" in again.stdout
    assert {p: p.stat().st_mtime for p in log_dir.glob("*/*/events.jsonl")} == before


def test_runs_lists_the_batch_as_one_row(digits_batch):
    _, log_dir = digits_batch
    r = CliRunner().invoke(app, ["runs", "--log-dir", str(log_dir), "--no-ui"])
    assert r.exit_code == 0, r.output
    assert "batch batch-noisy-labels-" in r.stdout and "2 runs" in r.stdout
    # and its runs are ordinary runs: listed inside the batch directory
    inner = only_batch(log_dir).path
    r = CliRunner().invoke(app, ["runs", "--log-dir", str(inner), "--no-ui"])
    assert r.stdout.count("noisy-labels-c1-e") == 2


# -- Ray ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local(batch_env):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    me = psutil.Process()

    def ray_children():
        return [
            p
            for p in me.children(recursive=True)
            if any(x in " ".join(p.cmdline()) for x in ("raylet", "gcs_server", "ray::"))
        ]

    wait_for(lambda: not ray_children(), 30, "Ray's processes to end")


def run_ray_batch(log_dir: Path, grid, *, logs: str = "auto") -> tuple[BatchRunner, BatchDir]:
    bd, manifest, _ = open_batch(grid, log_dir=log_dir)
    with bd.locked():
        ex = RayExecutor(bd, logs=logs)
        runner = BatchRunner(bd, manifest, ex, options=BatchOptions())
        runner.run()
    return runner, bd


def test_ray_batch_summary_matches_the_logs(ray_local, tmp_path):
    grid = grid_from_cli(
        ["noisy-labels"],
        agents=["scripted"],
        models=[],
        params=["dataset=digits", "n_train=300"],
        epochs=2,
        seed_base=40,
        limits=RunLimits(),
        agent_options={},
    )
    runner, bd = run_ray_batch(tmp_path, grid)
    assert runner.exit_code == 0
    summary = check_summary_against_logs(bd)
    assert summary["evaluated"] == 2


def test_ray_streams_logs_back(ray_local, tmp_path):
    grid = grid_from_cli(
        ["batch-instant"],
        agents=["scripted"],
        models=[],
        params=[],
        epochs=3,
        seed_base=3,
        limits=RunLimits(),
        agent_options={},
    )
    runner, bd = run_ray_batch(tmp_path, grid, logs="stream")
    assert runner.exit_code == 0
    for spec in bd.read_manifest().runs:
        log = RunLog.open(bd.run_path(spec.run_id) / "events.jsonl")
        assert log.status == "completed"
        assert log.grade.metrics["score"] == batch_tasks.score_of(spec.seed)
        # the kernel's home and the public data copy stay on the node
        assert not (bd.run_path(spec.run_id) / "sandbox").exists()


# -- robustness -----------------------------------------------------------------------------


def test_resume_after_kill_9_loses_and_duplicates_nothing(batch_env, tmp_path):
    args = ["batch-instant", "-T", "sleep=5", "--epochs", "4", "-j", "2", "--seed-base", "1"]
    args += ["--no-ui", "--log-dir", str(tmp_path)]
    proc = start_cli(args)
    try:
        bd = wait_for(
            lambda: (
                (tmp_path.iterdir() and only_batch(tmp_path)) if any(tmp_path.iterdir()) else None
            ),
            60,
            "the batch directory",
        )
        # two runs done, two others mid-run: kill the batch process the hard way
        wait_for(lambda: len(logs_saying(bd, '"type":"run_end"')) >= 2, 120, "two runs to end")
        wait_for(
            lambda: len(logs_saying(bd, "sleeping")) >= 4, 120, "the next two runs to be running"
        )
        workers = worker_pids(bd)
        assert len(workers) == 2
        kept = {p.parent.name: p.stat().st_mtime for p in logs_saying(bd, '"type":"run_end"')}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the runs die with the batch (PR_SET_PDEATHSIG) instead of going on alone
    wait_for(lambda: gone(workers), 30, "the orphaned runs to end")
    r = cli(args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming batch" in r.stdout
    manifest = bd.read_manifest()
    run_dirs = sorted(p.name for p in bd.path.iterdir() if (p / "events.jsonl").exists())
    assert run_dirs == sorted(s.run_id for s in manifest.runs)  # none lost, none twice
    for spec in manifest.runs:
        log = RunLog.open(bd.run_path(spec.run_id) / "events.jsonl")
        assert log.status == "completed" and log.header.run_id == spec.run_id
    for name, mtime in kept.items():  # finished runs were kept as they were
        assert (bd.path / name / "events.jsonl").stat().st_mtime == mtime
    moved = sorted(p.name for p in bd.attempts.iterdir())
    assert len(moved) == 2 and all(m.rsplit(".", 1)[0] not in kept for m in moved)
    summary = json.loads((bd.path / SUMMARY_JSON).read_text())
    assert summary["runs"] == 4 and summary["evaluated"] == 4
    expected = sum(batch_tasks.score_of(s.seed) >= 0.5 for s in manifest.runs)
    assert summary["passed"] == expected


def test_a_broken_run_is_that_runs_error_and_the_batch_goes_on(batch_env, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        "epochs = 1\nseed_base = 5\n"
        '[[task]]\nname = "batch-raises"\n'
        '[[task]]\nname = "batch-kernel-dies"\n'
        '[[task]]\nname = "batch-instant"\n'
        "[batch]\njobs = 2\nretry = 1\n"
    )
    r = cli([str(grid), "--no-ui", "--log-dir", str(tmp_path / "logs")])
    assert r.returncode == 3, r.stdout + r.stderr  # an infrastructure error in the batch
    bd = only_batch(tmp_path / "logs")
    summary = json.loads((bd.path / SUMMARY_JSON).read_text())
    by_task = {c["task"]: c for c in summary["configs"]}
    assert by_task["batch-raises"]["errors"] == 1 and by_task["batch-raises"]["evaluated"] == 0
    outcome = next(o for o in summary["run_outcomes"] if o["config"] == "c1")
    assert outcome["status"] == "error" and "this task is broken" in outcome["message"]
    assert outcome["attempts"] == 2  # retried once, then given up
    # the kernel that died was restarted and the run still submitted
    dies = bd.run_path(next(s.run_id for s in bd.read_manifest().runs if s.config == "c2"))
    log = RunLog.open(dies / "events.jsonl")
    assert log.status == "completed" and log.grade.submitted
    assert by_task["batch-instant"]["evaluated"] == 1
    assert "(retrying)" in r.stdout and "infrastructure error" in r.stdout


def test_a_killed_worker_is_retried(batch_env, tmp_path):
    args = ["batch-instant", "-T", "sleep=8", "--epochs", "2", "-j", "2", "--retry", "1"]
    args += ["--seed-base", "0", "--no-ui", "--log-dir", str(tmp_path)]
    proc = start_cli(args)
    try:
        bd = wait_for(lambda: any(tmp_path.iterdir()) and only_batch(tmp_path), 60)
        wait_for(lambda: len(logs_saying(bd, "sleeping")) >= 1, 120, "a run to be sleeping")
        victim = worker_pids(bd)[0]
        victim.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err  # the retry was graded
    assert "killed by SIGKILL" in out and "(retrying)" in out, out
    summary = json.loads((bd.path / SUMMARY_JSON).read_text())
    assert summary["evaluated"] == 2
    assert sorted(o["attempts"] for o in summary["run_outcomes"]) == [1, 2]


def test_ctrl_c_stops_every_run_cleanly_and_twice_kills(batch_env, tmp_path):
    # stubborn: the runs take their kernels' interrupt grace (3 s) to stop, so the second
    # Ctrl-C below comes while they are stopping
    args = ["batch-instant", "-T", "sleep=120", "-T", "stubborn=true", "--epochs", "3", "-j", "2"]
    args += ["--no-ui"]
    args += ["--log-dir", str(tmp_path)]
    proc = start_cli(args)
    try:
        bd = wait_for(lambda: any(tmp_path.iterdir()) and only_batch(tmp_path), 60)
        wait_for(lambda: len(logs_saying(bd, "sleeping")) >= 2, 120, "two runs to be sleeping")
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.time() - t0 < 30
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    summary = json.loads((bd.path / SUMMARY_JSON).read_text())
    assert (summary["interrupted"], summary["not_run"]) == (2, 1)
    assert summary["stopped"].startswith("interrupted")
    for p in bd.path.glob("*/events.jsonl"):
        assert RunLog.open(p).status == "interrupted"  # complete logs
    # resumed, then Ctrl-C twice: the runs are killed at once
    proc = start_cli(args)
    try:
        # the interrupted attempts are moved aside first, then the reruns start
        wait_for(lambda: bd.attempts.is_dir() and len(list(bd.attempts.iterdir())) == 2, 60)
        wait_for(lambda: len(logs_saying(bd, "sleeping")) >= 2, 120, "the reruns to sleep")
        workers = worker_pids(bd)
        assert len(workers) == 2
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "again: killing" in err
    wait_for(lambda: gone(workers), 30, "the killed runs to be gone")


def test_rate_limits_make_every_worker_back_off(batch_env, tmp_path):
    gate: dict[str, float | None] = {"t429": None, "recorded": None}

    def started_runs() -> int:
        return sum('"type":"run_start"' in p.read_text() for p in tmp_path.glob("*/*/events.jsonl"))

    first = threading.Lock()

    def pause_recorded() -> bool:
        dirs = [p for p in tmp_path.iterdir() if BatchDir.is_batch(p)]
        return any(FileBackoff(BatchDir(p).backoff_path).remaining() > 0 for p in dirs)

    def policy(req):
        with first:
            is_first = gate["t429"] is None
            if is_first:
                gate["t429"] = 0.0
        if is_first:
            # The first call is answered 429 once every run has written run_start: the
            # others then start their sandboxes and make their first call during the
            # pause, which they must wait out although nobody answered them 429.
            wait_for(lambda: started_runs() >= 3, 180, "the three runs to start")
            gate["t429"] = time.monotonic()
            threading.Thread(target=watch_the_pause, daemon=True).start()
            return Fault.rate_limited(retry_after=4)
        if gate["recorded"] is None:
            # A call made before the 429'd run recorded the pause (on a loaded machine
            # that took more than 0.3 s): held until it is, then given one more step,
            # so that the run's next call falls inside the pause and must wait
            wait_for(lambda: gate["recorded"], 60, "the 429'd run to record the pause")
            return Reply.tool("python_expression", {"code": "1"})
        return Reply.tool("submit", {})

    def watch_the_pause() -> None:
        # when the 429'd run wrote the shared pause (to 10 ms): calls sent before then
        # need not wait, every call after it must
        deadline = time.monotonic() + 60
        while not pause_recorded() and time.monotonic() < deadline:
            time.sleep(0.01)
        gate["recorded"] = time.monotonic()

    with MockAnthropic(policy=policy, check_growth=False) as api:
        env = {**os.environ, **api.env()}
        r = subprocess.run(
            [
                str(EXE),
                "batch",
                "batch-instant",
                "--agent",
                "claude",
                "--epochs",
                "3",
                "-j",
                "3",
                "--no-ui",
                "--log-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        api.assert_valid()
    assert r.returncode == 0, r.stdout + r.stderr
    t429, recorded = gate["t429"], gate["recorded"]
    assert t429 is not None and recorded is not None
    # from 0.3 s after the pause was written (a call already on its way then may arrive)
    later = [q.received_at for q in api.requests if q.received_at > recorded + 0.3]
    assert later and all(t >= t429 + 3.5 for t in later), [t - t429 for t in later]
    bd = only_batch(tmp_path)
    waited = logs_saying(bd, "shared_backoff")
    assert waited, (
        "no other run met the shared backoff",
        [round(q.received_at - t429, 2) for q in api.requests],
        [(p.parent.name, logs_saying(bd, "rate")) for p in bd.path.glob("*/events.jsonl")],
    )


def test_bad_grids_are_one_line_and_exit_2(batch_env, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('epochs = 2\n[[task]\nname = "noisy-labels"\n')
    cases = [
        (["noisy-label"], "unknown task 'noisy-label'"),
        (["noisy-labels", "-T", "noise=symmetric,bogus"], "-T noise=bogus: must be"),
        (["noisy-labels", "-T", "nosie=x"], "has no parameter 'nosie'"),
        (["noisy-labels", "-T", "dataset"], "-T dataset: expected key=value"),
        (["noisy-labels", "--epochs", "0"], "empty grid: epochs must be at least 1"),
        (["noisy-labels", "-T", "noise="], "-T noise="),
        ([str(bad)], f"{bad}: line 2, column"),
        (["noisy-labels", "--model", "claude-haiku-4-5"], "--model claude-haiku-4-5 applies"),
        (["noisy-labels", "--agent", "claude"], "ANTHROPIC_API_KEY is not set"),
        (["noisy-labels", "--executor", "slurm"], "--executor slurm"),
        (["--report", str(tmp_path / "nowhere")], "no batch here"),
    ]
    for args, match in cases:
        r = CliRunner().invoke(app, ["batch", *args, "--no-ui"])
        assert r.exit_code == 2, (args, r.output)
        assert match in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.output
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


# -- the TUI --------------------------------------------------------------------------------


UNDER_AN_APP = """
import asyncio, sys
from pathlib import Path
from textual.app import App
from agentdeck.engine.batch import BatchRunner, LocalExecutor, open_batch
from agentdeck.engine.batch.grid import RunLimits, grid_from_cli

grid = grid_from_cli(["batch-instant"], agents=["scripted"], models=[], params=[], epochs=1,
                     seed_base=0, limits=RunLimits(), agent_options={})
bd, manifest, _ = open_batch(grid, log_dir=Path(sys.argv[1]))
bd.lock()
executor = LocalExecutor(bd, jobs=1)

async def main():
    async with App().run_test() as pilot:
        assert sys.stderr.fileno() == -1  # the app's print capture, as under the batch screen
        runner = BatchRunner(bd, manifest, executor).start()
        while not runner.done:
            await pilot.pause(0.1)
    print("error", repr(runner.error), "exit", runner.exit_code, flush=True)

asyncio.run(main())
"""


def test_runs_start_while_a_textual_app_holds_stderr(batch_env, tmp_path):
    """The first run starts multiprocessing's fork server; under a Textual app, whose
    stderr has no descriptor (fileno -1), that failed ("bad value(s) in fds_to_keep")
    and the batch ended with no run started. A fresh process: no fork server yet."""
    r = subprocess.run(
        [sys.executable, "-c", UNDER_AN_APP, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "error None exit 0" in r.stdout, r.stdout + r.stderr[-3000:]


async def test_batch_screen_shows_the_runs_live(batch_env, tmp_path):
    from textual.widgets import DataTable

    from agentdeck.engine.batch import LocalExecutor
    from agentdeck.tui.app import AgentDeckApp
    from agentdeck.tui.screens.batch import BatchScreen
    from agentdeck.tui.screens.run import RunScreen
    from agentdeck.tui.screens.runs import RunsScreen

    grid = grid_from_cli(
        ["batch-instant"],
        agents=["scripted"],
        models=[],
        params=["sleep=6"],  # long enough to be seen running
        epochs=2,
        seed_base=4,
        limits=RunLimits(),
        agent_options={},
    )
    bd, manifest, _ = open_batch(grid, log_dir=tmp_path)
    bd.lock()
    runner = BatchRunner(bd, manifest, LocalExecutor(bd, jobs=2))
    runner.start()
    app = AgentDeckApp(lambda: BatchScreen(runner=runner))
    seen: set[str] = set()
    opened = False
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, BatchScreen)
        table = screen.query_one("#batch-table", DataTable)
        assert table.row_count == 2
        deadline = time.time() + 120
        while not runner.done and time.time() < deadline:
            await pilot.pause(0.2)
            seen |= {str(table.get_cell_at((i, 4))) for i in range(2)}
            if not opened and any("running" in s for s in seen) and app.screen is screen:
                opened = True
                await pilot.press("enter")  # the live run screen, following its log
                await until(pilot, lambda: isinstance(app.screen, RunScreen))
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is screen)
        assert runner.done
        assert runner.error is None, runner.error
        assert any("running" in s for s in seen), seen

        summary = screen.query_one("#batch-summary")

        def states() -> set[str]:
            return {str(table.get_cell_at((i, 4))) for i in range(2)}

        def title() -> str:
            return str(screen.query_one("#batch-title").render())

        def drawn_done() -> bool:
            graded = all(s.startswith(("✓", "✗")) for s in states())
            return graded and summary.has_class("-visible") and "[2/2]" in title()

        await eventually(pilot, drawn_done, 10)  # the screen redraws on its own 0.5 s timer
        assert all(s.startswith(("✓", "✗")) for s in states()), states()
        assert summary.has_class("-visible")
        assert "[2/2]" in title(), title()
    bd.unlock()
    # the runs list shows the batch as one row and opens its screen
    app = AgentDeckApp(lambda: RunsScreen(tmp_path))
    async with app.run_test(size=(160, 40)) as pilot:
        runs_screen = app.screen
        assert isinstance(runs_screen, RunsScreen)
        await until(pilot, lambda: any(r.batch for r in runs_screen.shown))
        row = next(i for i, r in enumerate(runs_screen.shown) if r.batch)
        runs_screen.table.move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen))
        summary = app.screen.query_one("#batch-summary")
        await until(pilot, lambda: summary.has_class("-visible"))
