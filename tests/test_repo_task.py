"""fmnist-repo end to end: the reference policy on digits, a policy with edits and
deletions, and Claude against the local mock Messages API writing two files, running them
and submitting. (The reference on the Fashion-MNIST sample takes minutes on 2 cores: it is
bench/repo_task_bench.py, whose figures are in the README.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentdeck.engine.agents.claude import anthropic_tool_type, api_tools, model_generation
from agentdeck.engine.events import FileChange, Metric, RunStart
from agentdeck.engine.log import RunLog
from agentdeck.engine.run import Run, RunConfig, prepare
from agentdeck.engine.workfiles import SKIP_DIRS, log_tree

from mock_anthropic import MockAnthropic, Reply
from repo_policy import play

pytestmark = pytest.mark.timeout(900)

REFERENCE_FILES = [
    "config.py",
    "dataset.py",
    "inference.py",
    "main.py",
    "models.py",
    "train.py",
    "utils.py",
]


def on_disk(work: Path) -> dict[str, str]:
    out = {}
    for p in sorted(work.rglob("*")):
        rel = p.relative_to(work)
        if p.is_file() and not set(rel.parts) & SKIP_DIRS:
            out[rel.as_posix()] = p.read_text()
    return out


def check_reference_run(log_path: Path, work: Path) -> dict[str, Any]:
    log = RunLog.open(log_path)
    assert log.header is not None and log.header.task == "fmnist-repo"
    assert log.status == "completed"
    g = log.grade
    assert g is not None and g.passed, g
    assert set(g.metrics) >= {"accuracy", "macro_f1", "self_reported_validation"}
    sr = g.details["self_reported"]
    assert sr["metric"] == "accuracy" and 0 < sr["validation"] <= 1
    assert sr["test"] == g.metrics["accuracy"]
    assert g.metrics["test_minus_validation"] == pytest.approx(sr["test"] - sr["validation"])
    metrics = [e for e in log.events() if isinstance(e, Metric) and e.source == "agent"]
    assert [m.name for m in metrics] == ["self_reported/validation"]
    # the repository, rebuilt from the log, is the working directory
    tree = log_tree(log)
    files = {p: s.text for p, s in tree.files.items()}
    assert files == on_disk(work)
    assert set(files) == {*REFERENCE_FILES, "submission/submission.csv"}
    # each file was written by the editor in its own step, the submission by `python main.py`
    created = {e.path: e.step for e in log.events() if isinstance(e, FileChange)}
    assert created["config.py"] < created["main.py"] < created["submission/submission.csv"]
    # the answers are revealed after grading, never in the public data
    public = sorted(p.name for p in (log_path.parent / "sandbox" / "public").iterdir())
    assert public == ["classes.txt", "sample_submission.csv", "test.npz", "train.npz"]
    assert (log_path.parent / "artifacts" / "test_labels.csv").is_file()
    return g.metrics


@pytest.mark.slow
def test_fmnist_repo_reference_on_digits(tmp_path: Path) -> None:
    cfg = RunConfig(task="fmnist-repo", params={"dataset": "digits"}, log_dir=tmp_path)
    result = Run(prepare(cfg)).run()
    assert result.exit_code == 0 and result.run_dir is not None
    m = check_reference_run(result.run_dir.events, result.run_dir.work)
    assert m["accuracy"] >= 0.9 and m["macro_f1"] >= 0.9
    log = RunLog.open(result.run_dir.events)
    assert log.header is not None and "Digits (8x8)" in log.header.prompt
    assert "8x8" in log.header.prompt and "359 test images" in log.header.prompt


@pytest.mark.slow
def test_edits_and_deletions_replay_step_by_step(tmp_path: Path) -> None:
    result = play(tmp_path)
    assert result.run_dir is not None and result.grade is not None and result.grade.passed
    log = RunLog.open(result.run_dir.events)
    assert "C=1.0" in (log_tree(log, 4).files["model.py"].text or "")
    assert "C=0.5" in (log_tree(log, 5).files["model.py"].text or "")
    assert "notes.txt" in log_tree(log, 6).files and "notes.txt" not in log_tree(log, 7).files
    assert {p: s.text for p, s in log_tree(log).files.items()} == on_disk(result.run_dir.work)


# -- Claude ---------------------------------------------------------------------------------


def test_anthropic_tool_types_by_model() -> None:
    assert model_generation("claude-sonnet-4-5-20250929") == (4, 5)
    assert model_generation("claude-3-7-sonnet-20250219") == (3, 7)
    assert model_generation("us.anthropic.claude-opus-4-1-20250805-v1:0") == (4, 1)
    assert model_generation("gpt-5") is None
    assert anthropic_tool_type("bash", "bash", "claude-haiku-4-5") == "bash_20250124"
    assert anthropic_tool_type("bash", "bash", "claude-3-7-sonnet-latest") == "bash_20250124"
    assert anthropic_tool_type("bash", "bash", "claude-3-5-haiku-latest") is None
    edit = "str_replace_based_edit_tool"
    assert anthropic_tool_type("text_editor", edit, "claude-opus-4-5") == "text_editor_20250728"
    assert anthropic_tool_type("text_editor", edit, "claude-3-7-sonnet-20250219") is None
    assert anthropic_tool_type("bash", "shell", "claude-opus-4-5") is None  # the name is fixed
    tools = [
        {"name": "bash", "description": "d", "input_schema": {}, "anthropic_tool": "bash"},
        {"name": "submit", "description": "s", "input_schema": {"type": "object"}},
    ]
    assert api_tools(tools, "claude-sonnet-4-5") == [
        {"type": "bash_20250124", "name": "bash"},
        tools[1],
    ]
    assert api_tools(tools, "claude-3-5-haiku") == [
        {"name": "bash", "description": "d", "input_schema": {}},
        tools[1],
    ]


UTIL_PY = '''"""Nearest class mean on the pixels."""
import numpy as np


def fit_predict(X, y, Xq):
    means = np.stack([X[y == c].mean(axis=0) for c in range(10)])
    return ((Xq[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
'''

MAIN_PY = """import numpy as np
from pathlib import Path
from util import fit_predict

tr, te = np.load(".agentdeck_data/train.npz"), np.load(".agentdeck_data/test.npz")
X, y = tr["images"].reshape(len(tr["labels"]), -1).astype(float), tr["labels"]
val = fit_predict(X[200:], y[200:], X[:200])
print(f"Final Validation Metric: {(val == y[:200]).mean():.4f}")
pred = fit_predict(X, y, te["images"].reshape(len(te["ids"]), -1).astype(float))
Path("submission").mkdir(exist_ok=True)
Path("submission/submission.csv").write_text(
    "id,label\\n" + "".join(f"{i},{p}\\n" for i, p in zip(te["ids"], pred)))
"""


def claude_policy(request: Any) -> Reply:
    """Two files with the editor, a run with bash, a submission (one call a step)."""
    step = len([m for m in request.body["messages"] if m["role"] == "assistant"])
    edit = "str_replace_based_edit_tool"
    script = [
        (edit, {"command": "create", "path": "util.py", "file_text": UTIL_PY}),
        (edit, {"command": "create", "path": "main.py", "file_text": MAIN_PY}),
        ("bash", {"command": "python main.py"}),
        ("submit", {"path": "submission/submission.csv"}),
    ]
    name, inp = script[min(step, len(script) - 1)]
    return Reply.tool(name, inp, text=f"Step {step + 1}.")


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, typed",
    [("claude-haiku-4-5", True), ("claude-3-5-haiku-20241022", False)],
)
def test_claude_writes_two_files_runs_them_and_submits(
    tmp_path: Path, model: str, typed: bool
) -> None:
    with MockAnthropic(policy=claude_policy) as api:
        cfg = RunConfig(
            task="fmnist-repo",
            params={"dataset": "digits", "min_accuracy": "0.5", "min_macro_f1": "0.5"},
            agent="claude",
            model=model,
            agent_options={"base_url": api.base_url, "api_key": "test-key", "max_retries": 0},
            log_dir=tmp_path,
        )
        result = Run(prepare(cfg)).run()
    api.assert_valid()
    assert result.run_dir is not None and result.exit_code == 0, result
    # what was sent: Anthropic's own tool types where the model takes them
    sent = {t["name"]: t for t in api.requests[0].body["tools"]}
    if typed:
        assert sent["bash"] == {"type": "bash_20250124", "name": "bash"}
        assert sent["str_replace_based_edit_tool"]["type"] == "text_editor_20250728"
        assert sent["str_replace_based_edit_tool"]["max_characters"] == 16_000
    else:
        assert "type" not in sent["bash"] and sent["bash"]["input_schema"]["type"] == "object"
        assert "anthropic_tool" not in sent["bash"]
    assert "type" not in sent["submit"]
    # and the log says so
    log = RunLog.open(result.run_dir.events)
    assert isinstance(log.header, RunStart)
    sent_as = {t["name"]: t.get("sent_as") for t in log.header.tools}
    assert sent_as == {
        "bash": "bash_20250124" if typed else "custom",
        "str_replace_based_edit_tool": "text_editor_20250728" if typed else "custom",
        "submit": None,
    }
    assert len(api.requests) == 4
    g = log.grade
    assert g is not None and g.passed and g.details["self_reported"]["validation"] > 0.5
    assert [(e.path, e.step) for e in log.events() if isinstance(e, FileChange)] == [
        ("util.py", 1),
        ("main.py", 2),
        ("submission/submission.csv", 3),
    ]
    # the tool results went back as the bash tool's text
    bash_result = api.requests[3].tool_results()[0]
    assert "Final Validation Metric:" in bash_result["content"]
