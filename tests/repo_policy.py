"""A small scripted repository run: two files written with the editor, run with bash,
one edited, a scratch file made and removed, a submission (fmnist-repo on digits).

It makes the 1.1 fixture log (``python tests/repo_policy.py`` rewrites
``tests/fixtures/compat/log-1.1-fmnist-repo-digits.jsonl``) and tests play it live.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from agentdeck.engine.agents.scripted import ScriptedAgent
from agentdeck.engine.run import Prepared, Run, RunConfig, RunResult, prepare
from agentdeck.engine.task import ScriptedStep

FIXTURE = Path(__file__).parent / "fixtures" / "compat" / "log-1.1-fmnist-repo-digits.jsonl"
PARAMS = {"dataset": "digits", "n_test": "40", "min_accuracy": "0.5", "min_macro_f1": "0.4"}

MODEL_PY = '''"""The model: a logistic regression on the pixels."""

from sklearn.linear_model import LogisticRegression


def make_model():
    return LogisticRegression(C=1.0, max_iter=300)
'''

MAIN_PY = '''"""Train, validate, predict, submit."""

from pathlib import Path

import numpy as np

from model import make_model

train = np.load(".agentdeck_data/train.npz")
test = np.load(".agentdeck_data/test.npz")
X = train["images"].reshape(len(train["labels"]), -1) / 16.0
y = train["labels"]
rng = np.random.default_rng(0)
order = rng.permutation(len(y))
val, tr = order[:200], order[200:]
model = make_model().fit(X[tr], y[tr])
print(f"Final Validation Metric: {(model.predict(X[val]) == y[val]).mean():.4f}")
pred = model.predict(test["images"].reshape(len(test["ids"]), -1) / 16.0)
Path("submission").mkdir(exist_ok=True)
rows = "".join(f"{i},{p}\\n" for i, p in zip(test["ids"], pred))
Path("submission/submission.csv").write_text("id,label\\n" + rows)
'''

POLICY = [
    ScriptedStep("bash", {"command": "ls .agentdeck_data"}, "What is there?"),
    ScriptedStep(
        "str_replace_based_edit_tool",
        {"command": "create", "path": "model.py", "file_text": MODEL_PY},
        "The model.",
    ),
    ScriptedStep(
        "str_replace_based_edit_tool",
        {"command": "create", "path": "main.py", "file_text": MAIN_PY},
        "The script.",
    ),
    ScriptedStep("bash", {"command": "python main.py"}, "Run it."),
    ScriptedStep(
        "str_replace_based_edit_tool",
        {"command": "str_replace", "path": "model.py", "old_str": "C=1.0", "new_str": "C=0.5"},
        "More regularisation.",
    ),
    ScriptedStep(
        "bash", {"command": "python main.py && echo draft > notes.txt"}, "Again, and a note."
    ),
    ScriptedStep("bash", {"command": "rm notes.txt && ls"}, "Tidy up."),
    ScriptedStep("submit", {"path": "submission/submission.csv"}, "Submit."),
]


def prepared(log_dir: Path, *, sandbox: str = "auto", run_id: str | None = None) -> Prepared:
    """fmnist-repo (digits) with this policy as the agent, writing into ``log_dir``."""
    cfg = RunConfig(
        task="fmnist-repo", params=dict(PARAMS), log_dir=log_dir, sandbox=sandbox, run_id=run_id
    )
    prep = prepare(cfg)
    prep.agent_factory = lambda inst: ScriptedAgent(POLICY)
    return prep


def play(log_dir: Path, *, sandbox: str = "auto", run_id: str | None = None) -> RunResult:
    """Run the policy into ``log_dir``."""
    return Run(prepared(log_dir, sandbox=sandbox, run_id=run_id)).run()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-fixture-"))
    try:
        result = play(tmp, run_id="fixture-repo-run")
        assert result.run_dir is not None and result.grade is not None and result.grade.passed
        lines = result.run_dir.events.read_text(encoding="utf-8").splitlines(keepends=True)
        # a fixture is not a sealed log of this machine: no seal key, no host name
        first = json.loads(lines[0])
        first["host"].pop("seal_key", None)
        first["host"]["hostname"] = "fixture"
        lines[0] = json.dumps(first, ensure_ascii=False, separators=(",", ":")) + "\n"
        FIXTURE.write_text("".join(lines), encoding="utf-8")
        print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
