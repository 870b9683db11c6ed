"""End-to-end runs of the noisy-labels task: the real runner, sandbox, grader and log.

The scripted agent plays the reference policy on scikit-learn's digits (always
offline); Claude is played by the local mock Messages API server; Ctrl-C is a
real SIGINT to the CLI process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from typer.testing import CliRunner

from agentdeck.engine.events import Artifact, Grade, ModelResponse, RunEnd, ToolCall, ToolResult
from agentdeck.engine.log import RunLog
from agentdeck.engine.run import Run, RunConfig, execute, prepare
from agentdeck.tui.cli import app

import conftest
from helpers import small_detector, wait_for
from mock_anthropic import MockAnthropic, Reply

ROOT = Path(__file__).resolve().parents[1]
FASHION_HEAD = ROOT.parent / "shared" / "data" / "fashion-mnist-head"
pytestmark = pytest.mark.timeout(600)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_kernel_children_gone(pids: list[int]) -> None:
    wait_for(lambda: not any(_alive(p) for p in pids), f"processes {pids} to end")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One scripted run on digits, shared by the tests that inspect it.

    These tests check the run's plumbing, so the detector trains with a small budget
    (``helpers.SMALL_DETECTOR``); the product's own policy is run end to end by
    ``test_fashion_mnist_sample_end_to_end``.
    """
    log_dir = tmp_path_factory.mktemp("logs")
    events = []
    pids = []

    def sink(ev):
        events.append(ev)
        if ev.TYPE == "step_start" and not pids:
            pids.append(run.sandbox.pid)

    cfg = RunConfig(
        task="noisy-labels",
        params={"dataset": "digits", "seed": "7"},
        agent="scripted",
        log_dir=log_dir,
    )
    with pytest.MonkeyPatch.context() as mp:
        code = small_detector(mp)
        run = Run(prepare(cfg), sinks=[sink])
        result = run.run()
    return result, events, pids, code


def _detector_code(events) -> str:
    """The code of the run's (only) python_expression call."""
    (call,) = [e for e in events if isinstance(e, ToolCall) and e.name == "python_expression"]
    return call.input["code"]


def test_scripted_digits_run_passes(digits_run):
    result, events, _, code = digits_run
    assert _detector_code(events) == code  # the run used the small budget
    assert result.status == "completed", result.message
    assert result.grade.passed and result.exit_code == 0
    m = result.grade.metrics
    assert m["f1"] >= 0.65 and (m["precision"] >= 0.55 or m["recall"] >= 0.55)
    types = [e.TYPE for e in events]
    assert types[0] == "run_start" and types[-1] == "run_end"
    assert types.count("step_start") == 3
    assert "tool_output_chunk" in types  # the detection code printed while it ran


def test_log_matches_the_stream(digits_run):
    result, events, _, _ = digits_run
    log = RunLog.open(result.run_dir.events)
    persisted = [e for e in events if e.PERSIST]
    assert [e.seq for e in persisted] == list(range(len(persisted)))
    assert len(log) == len(persisted)
    assert log.status == "completed" and log.grade.passed
    assert log.step(3).calls[0].call.name == "submit_predictions"
    assert log.warnings == []


def test_secrets_are_not_in_the_sandbox_and_revealed_after_grading(digits_run):
    result, events, _, _ = digits_run
    rd = result.run_dir
    # the sandbox gets one read-only file of public data, prepared at setup
    public = np.load(rd.public / "noisy_labels.npz")
    assert sorted(public.files) == ["X_test", "X_train", "y_test", "y_train"]
    grade_i = next(i for i, e in enumerate(events) if isinstance(e, Grade))
    art_i = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, Artifact) and e.name == "true noisy indices"
    )
    submit_i = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, ToolResult) and e.name == "submit_predictions"
    )
    assert submit_i < grade_i < art_i  # revealed only once the submission was graded
    true_idx = np.load(rd.path / events[art_i].path)
    y_noisy = public["y_train"]
    from agentdeck.engine.datasets import load_image_dataset

    clean = load_image_dataset("digits").y_train
    assert np.array_equal(np.flatnonzero(y_noisy != clean), true_idx)
    start = events[0]
    # given on the command line: hidden from the agent in run_start, revealed in the grade
    assert start.task_params["seed"] == "hidden until grading" and start.seed is None
    assert events[grade_i].details["seed"] == 7
    assert events[grade_i].details["revealed"] == {"seed": 7}


def test_no_process_survives_the_run(digits_run):
    _, _, pids, _ = digits_run
    assert pids and all(pids)
    _wait_kernel_children_gone(pids)


def test_hidden_seed_and_rate_when_random(tmp_path):
    cfg = RunConfig(
        task="noisy-labels",
        params={"dataset": "digits", "n_train": "300"},
        agent="replay:" + str(_write_replay_log(tmp_path, ["1 + 1"])),
        log_dir=tmp_path / "logs",
        max_steps=2,
    )
    events = []
    result = execute(prepare(cfg), sinks=[events.append])
    assert result.status == "max_steps_reached"  # two steps, no submission
    start = events[0]
    assert start.seed is None
    assert start.task_params["seed"] == "hidden until grading"
    assert start.task_params["noise_rate"] == "hidden until grading"
    g = next(e for e in events if isinstance(e, Grade))
    assert not g.submitted and not g.passed
    art = next(e for e in events if isinstance(e, Artifact))
    assert (result.run_dir.path / art.path).exists()  # revealed at the end anyway


def _write_replay_log(tmp_path: Path, codes: list[str], name: str = "replay.md") -> Path:
    """A seed-format markdown log whose steps load the data then run ``codes``."""
    steps = [
        "### Step 1\n\n**API Response:**\n- ID: `msg_a`\n- Stop Reason: `tool_use`\n"
        "- Input Tokens: 10\n- Output Tokens: 5\n\n#### Tool Call 1: "
        "`load_corrupted_dataset`\n\n**Input:**\n\n```json\n{}\n```\n\n---\n"
    ]
    for i, code in enumerate(codes, start=2):
        steps.append(
            f"### Step {i}\n\n**API Response:**\n- ID: `msg_{i}`\n- Stop Reason: "
            "`tool_use`\n- Input Tokens: 10\n- Output Tokens: 5\n\n#### Tool Call 1: "
            f"`python_expression`\n\n**Input:**\n\n```python\n{code}\n```\n\n---\n"
        )
    text = (
        "# Agent Run Log\n\n**Timestamp:** 2025-11-08T23:11:27\n\n**Model:** replay\n\n"
        f"**Max Steps:** {len(codes) + 1}\n\n**Completion Status:** max_steps_reached\n\n"
        "## Initial Prompt\n\n```\nfind the noisy labels\n```\n\n## Execution Steps\n\n"
        + "\n".join(steps)
        + "\n## Final Result\n\n*No result submitted*\n\n## Grading\n\n"
        "**Success:** False\n"
    )
    p = tmp_path / name
    p.write_text(text)
    return p


def test_replay_of_the_seed_reissues_its_calls(tmp_path):
    """replay:LOG re-runs a recorded run's tool calls against a fresh sandbox."""
    codes = [
        "print(X_train.shape, y_train[:5])",
        "undefined_name",
        "import numpy as np\nnp.save('predictions.npy', np.arange(10))",
    ]
    log = _write_replay_log(tmp_path, codes)
    cfg = RunConfig(
        task="noisy-labels",
        params={"dataset": "digits", "seed": "1"},
        agent=f"replay:{log}",
        log_dir=tmp_path / "logs",
    )
    events = []
    result = execute(prepare(cfg), sinks=[events.append])
    results = [e for e in events if isinstance(e, ToolResult)]
    assert results[0].output["train_size"] > 0
    from agentdeck.engine.datasets import load_image_dataset

    n = len(load_image_dataset("digits").y_train)
    assert f"({n}, 64)" in results[1].output["result"]
    assert "NameError" in results[2].error
    assert results[3].error is None and (result.run_dir.work / "predictions.npy").exists()
    assert result.status == "error" and "recorded steps were replayed" in result.message


def test_cli_headless_json(tmp_path, monkeypatch):
    code = small_detector(monkeypatch)  # the stream is checked here, not detection quality
    r = CliRunner().invoke(
        app,
        [
            "run",
            "noisy-labels",
            "-T",
            "dataset=digits",
            "-T",
            "seed=3",
            "--log-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["type"] == "run_start" and lines[-1]["type"] == "run_end"
    assert lines[-1]["status"] == "completed"
    assert [x["seq"] for x in lines] == list(range(len(lines)))
    calls = [x for x in lines if x["type"] == "tool_call" and x["name"] == "python_expression"]
    assert [x["input"]["code"] for x in calls] == [code]


def _claude_policy():
    """Plays Claude: load, a quick detector, save, submit; then checks the tool results."""
    detector = (
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import cross_val_predict\n"
        "p = cross_val_predict(LogisticRegression(max_iter=300), X_train / 16.0, y_train, cv=5,"
        " method='predict_proba')\n"
        "conf = p[np.arange(len(y_train)), y_train]\n"
        "idx = np.argsort(conf)[: int(0.18 * len(y_train))]\n"
        "np.save('predictions.npy', np.sort(idx))\nprint(len(idx))"
    )
    plan = [
        Reply.tool(
            "load_corrupted_dataset",
            {},
            text="Loading the data.",
            usage={
                "input_tokens": 1400,
                "output_tokens": 70,
                "cache_creation_input_tokens": 1200,
                "cache_read_input_tokens": 0,
            },
        ),
        Reply.tool(
            "python_expression",
            {"code": detector},
            text="Out-of-fold probabilities.",
            usage={
                "input_tokens": 300,
                "output_tokens": 250,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1200,
            },
        ),
        Reply.tool(
            "submit_predictions",
            {"predictions_file": "predictions.npy"},
            usage={
                "input_tokens": 200,
                "output_tokens": 40,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1500,
            },
        ),
    ]
    return plan


def test_claude_run_against_the_mock_api(tmp_path, monkeypatch):
    plan = _claude_policy()
    with MockAnthropic(plan) as api:
        for k, v in api.env().items():
            monkeypatch.setenv(k, v)
        r = CliRunner().invoke(
            app,
            [
                "run",
                "noisy-labels",
                "-T",
                "dataset=digits",
                "-T",
                "seed=5",
                "--agent",
                "claude",
                "--no-ui",
                "--log-dir",
                str(tmp_path),
            ],
        )
        api.assert_valid()
    assert r.exit_code == 0, r.output
    log = RunLog.open(next(tmp_path.glob("*/events.jsonl")))
    assert log.status == "completed" and log.grade.passed
    assert log.header.agent == "claude" and log.header.model == "claude-haiku-4-5"
    t = log.totals()
    assert (t.input_tokens, t.output_tokens) == (1900, 360)
    assert (t.cache_creation_input_tokens, t.cache_read_input_tokens) == (1200, 2700)
    per_step = [log.step(n).response for n in log.step_numbers]
    assert all(isinstance(x, ModelResponse) and x.message_id.startswith("msg_") for x in per_step)
    assert t.cost_usd == pytest.approx(sum(x.cost_usd for x in per_step))
    # the tool results went back to the model with the matching ids
    last = api.requests[-1].body["messages"]
    assert last[-1]["content"][0]["type"] == "tool_result"


def test_ctrl_c_interrupts_a_running_tool(tmp_path):
    log = _write_replay_log(
        tmp_path, ["import time\nprint('sleeping', flush=True)\ntime.sleep(120)"]
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).parent / "agentdeck"
    proc = subprocess.Popen(
        [
            str(exe),
            "run",
            "noisy-labels",
            "-T",
            "dataset=digits",
            "-T",
            "n_train=200",
            "--agent",
            f"replay:{log}",
            "--no-ui",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:

        def sleeping() -> bool:
            found = list((tmp_path / "logs").glob("*/events.jsonl"))
            return bool(found) and '"sleeping' in found[0].read_text()

        wait_for(sleeping, "the sleeping tool call to start", timeout=120, interval=0.2)
        (events_path,) = (tmp_path / "logs").glob("*/events.jsonl")
        kernel_pids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert time.time() - t0 < 20
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rl = RunLog.open(events_path)
    assert rl.status == "interrupted"
    end = rl.end
    assert isinstance(end, RunEnd) and end.totals is not None and end.totals.steps == 2
    rec = rl.step(2)
    assert rec.calls[0].result is not None  # the interrupted call still has its result
    _wait_kernel_children_gone(kernel_pids)


def test_fork_a_run_at_step_n_to_claude(tmp_path, monkeypatch):
    """replay:LOG@N replays N recorded steps, then Claude continues from step N+1."""
    log = _write_replay_log(tmp_path, ["print('recorded step 2')", "print('never replayed')"])
    plan = _claude_policy()[1:]  # Claude picks up after the replayed load step
    with MockAnthropic(plan) as api:
        for k, v in api.env().items():
            monkeypatch.setenv(k, v)
        cfg = RunConfig(
            task="noisy-labels",
            params={"dataset": "digits", "seed": "5"},
            agent=f"replay:{log}@1",
            log_dir=tmp_path / "logs",
        )
        events = []
        result = execute(prepare(cfg), sinks=[events.append])
        api.assert_valid()
    assert result.status == "completed" and result.grade.passed
    responses = [e for e in events if isinstance(e, ModelResponse)]
    assert responses[0].message_id == "replay_msg_a"
    assert all(r.message_id.startswith("msg_") for r in responses[1:])
    first_request = api.requests[0].body["messages"]
    # Claude saw the replayed step and its fresh tool result
    assert first_request[1]["content"][0]["name"] == "load_corrupted_dataset"
    assert "train_size" in first_request[2]["content"][0]["content"]
    assert events[0].agent == "replay" and events[0].model == "claude-haiku-4-5"


@pytest.mark.slow
@pytest.mark.timeout(1000)
@pytest.mark.skipif(not FASHION_HEAD.is_dir(), reason="shared Fashion-MNIST sample not present")
def test_fashion_mnist_sample_end_to_end() -> None:
    """The one full run on real data: the CLI, the task on the Fashion-MNIST sample
    (8,226 images, 20% held out as the test split), the real sandbox kernel, the
    product's reference policy as it ships (the default detector: 5 folds, epochs by
    data size, 2 rounds) and the grader. The README quotes F1 0.92 for this sample."""
    from agentdeck.tasks.noisy_labels.reference import detection_code

    # conftest started this run when the suite began (EARLY_RUNS): it trains beside the
    # other tests; started here instead when it was not (this file run on its own path)
    early = conftest.EARLY_RUNS.get(conftest.E2E_TEST) or conftest.EarlyRun(
        conftest.e2e_args(FASHION_HEAD)
    )
    conftest.EARLY_RUNS[conftest.E2E_TEST] = early
    # its kernel needs about 212 s of CPU, but beside the suite, with other work on the
    # machine's cores, it took 539 s once: the limit leaves room for such a day
    code, output = early.wait(timeout=900)
    assert code == 0, output
    log = RunLog.open(next(early.log_dir.glob("*/events.jsonl")))
    assert log.status == "completed" and log.warnings == []
    assert log.step(2).calls[0].call.input["code"] == detection_code(seed=0)
    g = log.grade
    assert g.passed and g.details["n_train"] == 6581 and g.details["noise_rate"] == 0.2
    print("\nnoisy-labels on the Fashion-MNIST sample:", g.metrics)
    # the pass bar is F1 0.65; 0.90 is what the detector's method is worth here
    assert g.metrics["f1"] > 0.90, g.metrics
    assert g.metrics["precision"] > 0.85 and g.metrics["recall"] > 0.85, g.metrics
