"""action-policy: a calibrated 5-way action classifier (seed 004).

AG News rows become five agent "actions" (``labels.py``); the first ``pool``
rows are split stratified into train / val / test (``split.py``). The agent
gets the train and val texts with labels and the test texts without, trains
a classifier and submits an ``[N_test, 5]`` probability matrix. The grader
(``grading.py``) checks it and scores accuracy, macro-F1, top-label ECE (10
bins), NLL, Brier and the seed's agent-loop proxies. The test labels stay in
the engine process and are written to the run's artifacts after grading.
The reference policy (``reference.py``) is the seed's TF-IDF + MLP with the
temperature scaling the seed planned as its next step.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.events import Artifact, Event, Grade
from agentdeck.engine.grader import (
    AllOf,
    SubmissionError,
    Threshold,
    evaluate,
    load_npy,
    resolve_submission,
)
from agentdeck.engine.log import RunDir
from agentdeck.engine.sandbox.isolation import DATA_DIR_NAME
from agentdeck.engine.task import (
    Param,
    ProgressFn,
    ScriptedStep,
    Task,
    TaskInstance,
    TaskParamError,
    parse_bool,
)
from agentdeck.engine.tools import ToolContext, ToolOutcome, ToolSpec
from agentdeck.tasks.action_policy.grading import (
    ECE_BINS,
    score_probabilities,
    validate_probabilities,
)
from agentdeck.tasks.action_policy.labels import ACTIONS, NUM_ACTIONS, map_to_actions
from agentdeck.tasks.action_policy.reference import PROBABILITIES_FILE, calibration_code
from agentdeck.tasks.action_policy.split import SplitSizeError, stratified_split, suggest_sizes

DATA_SUBDIR = DATA_DIR_NAME
DATA_FILE = "action_policy.json"
#: Fewest rows of each action the pool must hold (so every split can have one).
MIN_PER_CLASS = 3


def _sizes(s: str) -> tuple[int, int, int]:
    parts = [p for p in s.replace(",", "/").split("/") if p.strip()]
    if len(parts) != 3:
        raise ValueError("expected three sizes train/val/test, e.g. 5000/2000/2000")
    out = tuple(int(p) for p in parts)
    if any(v < 1 for v in out):
        raise ValueError("each size must be at least 1")
    return out  # type: ignore[return-value]


def _pool(s: str) -> int:
    v = int(s)
    if v < 3 * NUM_ACTIONS:
        raise ValueError(f"must be at least {3 * NUM_ACTIONS}")
    return v


def _fraction(s: str) -> float:
    v = float(s)
    if not 0.0 <= v <= 1.0:
        raise ValueError("must be between 0 and 1")
    return v


def _opt_str(s: str) -> str | None:
    return s if s.strip() and s.lower() not in ("none", "auto") else None


def pass_rule(min_accuracy: float, min_macro_f1: float, max_ece: float) -> AllOf:
    return AllOf(
        (
            Threshold("accuracy", ">=", min_accuracy, "accuracy"),
            Threshold("macro_f1", ">=", min_macro_f1, "macro-F1"),
            Threshold("ece", "<=", max_ece, f"ECE ({ECE_BINS} bins)"),
        )
    )


PROMPT = """\
You are building the decision policy of a coding agent. Each item is a short news text (title and description); its label is the action the agent should take, one of {k}:
{classes}

Your task: train a classifier on the labelled texts and submit well-calibrated class probabilities for the unlabelled test texts. Calibration matters as much as accuracy: downstream, the agent trusts these probabilities (how many files it touches, how often it retries).

Available tools:
1. load_dataset: Load the data (call this first)
   - Defines train_texts, y_train ({n_train} items), val_texts, y_val ({n_val} items), test_texts ({n_test} items, no labels) and class_names
   - Labels are integers 0-{last} in the order above
2. python_expression: Run Python code in a persistent Python sandbox
   - Libraries available: numpy (np), torch, sklearn
   - agentdeck.engine.trainer (fit, predict_proba, TrainConfig) trains torch models and reports per-epoch metrics; agentdeck.engine.metrics has expected_calibration_error, nll, brier_score, fit_temperature, softmax
   - Variables persist across calls
3. submit_probabilities: Submit a file of test-set probabilities
   - IMPORTANT: First save them with np.save('probabilities.npy', probs), probs of shape ({n_test}, {k}): row i is test_texts[i], column j is action j, each row sums to 1
   - Then call submit_probabilities with probabilities_file='probabilities.npy'

Success criteria (on the hidden test labels):
- Pass threshold: {criteria}
- Accuracy and macro-F1 use the argmax of each row
- ECE: the rows are put in {bins} equal-width bins by their largest probability (confidence); ECE = sum over bins of (bin size / N) * |accuracy in bin - mean confidence in bin|
- NLL, Brier score and per-class recall are reported too
- Maximum {max_steps} steps (one tool call per step)

Workflow:
1. Load the data with load_dataset
2. Train and calibrate (e.g. fit a temperature on the validation set) with python_expression
3. Save: np.save('probabilities.npy', probs)
4. Submit: submit_probabilities(probabilities_file='probabilities.npy')"""


@dataclass
class _Secrets:
    y_test: np.ndarray
    test_rows: np.ndarray
    revealed: bool = False


def _source_paths(params: dict[str, Any], source: str) -> tuple[Path, ...]:
    """What a sandbox must not read: the labelled CSV and the data directory."""
    from agentdeck.engine.data.paths import data_dir as resolve_data_dir

    out = [Path(resolve_data_dir(params.get("data_dir"))).resolve()]
    with contextlib.suppress(OSError, ValueError):
        out.append(Path(source).expanduser().resolve())
    if params.get("source"):
        out.append(Path(str(params["source"])).expanduser().resolve())
    return tuple(out)


@dataclass
class _Data:
    texts: list[str]
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source: str
    notes: list[str]


class ActionPolicyTask(Task):
    name = "action-policy"
    description = (
        "Calibrated 5-way action classification (seed 004: AG News mapped to agent "
        "actions); graded by accuracy, macro-F1 and ECE."
    )
    prompt_marks = ("action", "calibrat")
    params = (
        Param(
            "source",
            None,
            "an AG News CSV file (class index 1-4, title, description), or "
            "a folder holding train.csv/test.csv",
            _opt_str,
            "AG News train split (data_dir; downloaded if missing)",
            secret=True,
        ),
        Param("split", "train", "which file of a folder or the download: train | test"),
        Param("pool", 9000, "use the first N rows of the file", _pool),
        Param(
            "sizes",
            (5000, 2000, 2000),
            "train/val/test sizes drawn from the pool "
            "(stratified; they may add up to less than the pool)",
            _sizes,
            "5000/2000/2000",
        ),
        Param("split_seed", 42, "random state of the stratified split", int),
        Param("min_accuracy", 0.70, "pass: test accuracy at least this", _fraction),
        Param("min_macro_f1", 0.60, "pass: test macro-F1 at least this", _fraction),
        Param("max_ece", 0.04, f"pass: test ECE ({ECE_BINS} bins) at most this", _fraction),
        Param(
            "data_dir",
            None,
            "where the data files are (else $AGENTDECK_DATA, ~/.cache/agentdeck)",
            _opt_str,
            "auto",
            secret=True,
        ),
        Param("download", True, "download the AG News file when missing", parse_bool),
        Param("max_steps", 20, "steps (model calls) allowed", int),
    )

    # -- data ------------------------------------------------------------------------------

    def load_data(self, params: dict[str, Any], progress: ProgressFn | None = None) -> _Data:
        """Read the file, map the labels and split the pool; ``TaskParamError`` if it
        does not fit."""
        from agentdeck.engine.datasets import DatasetError, DatasetUnavailable, load_ag_news

        pool, sizes = int(params["pool"]), tuple(params["sizes"])
        if sum(sizes) > pool:
            raise TaskParamError(
                f"-T sizes={'/'.join(map(str, sizes))} needs {sum(sizes):,} rows but "
                f"-T pool={pool} has {pool:,}; use e.g. -T sizes="
                f"{'/'.join(map(str, suggest_sizes(pool)))}, or a larger pool"
            )
        if params["split"] not in ("train", "test"):
            raise TaskParamError(f"-T split={params['split']}: must be train or test")
        try:
            ds = load_ag_news(
                params["source"],
                split=params["split"],
                data_dir=params["data_dir"],
                download=params["download"],
                progress=progress,
            )
        except DatasetUnavailable as e:
            raise TaskParamError(f"AG News is not available: {e}") from e
        except DatasetError as e:
            raise TaskParamError(f"-T source: {e}") from e
        if len(ds) < pool:
            n = len(ds)
            raise TaskParamError(
                f"-T pool={pool}: {ds.source} has only {n:,} rows; use -T pool={n} -T sizes="
                f"{'/'.join(map(str, suggest_sizes(n)))} (or smaller)"
            )
        labels = map_to_actions(ds.labels[:pool], ds.titles[:pool], ds.descriptions[:pool])
        counts = np.bincount(labels, minlength=NUM_ACTIONS)
        if counts.min() < MIN_PER_CLASS:
            c = int(counts.argmin())
            raise TaskParamError(
                f"the first {pool:,} rows of {ds.source} hold {int(counts[c])} rows of action "
                f"{ACTIONS[c]} (counts: {counts.tolist()}); every action needs at least "
                f"{MIN_PER_CLASS}: use a larger pool or a file with all four topics"
            )
        try:
            train, val, test = stratified_split(labels, sizes, int(params["split_seed"]))
        except SplitSizeError as e:
            raise TaskParamError(str(e)) from e
        return _Data(
            texts=ds.texts[:pool],
            labels=labels,
            train=train,
            val=val,
            test=test,
            source=ds.source,
            notes=list(ds.notes),
        )

    # -- one run ---------------------------------------------------------------------------

    def setup(
        self, params: dict[str, Any], run_dir: RunDir, progress: ProgressFn | None = None
    ) -> TaskInstance:
        from agentdeck.engine.sandbox.tool import python_expression_tool

        data = self.load_data(params, progress)
        classes = list(ACTIONS)
        k = len(classes)
        n_test = int(data.test.size)
        sec = _Secrets(y_test=data.labels[data.test].copy(), test_rows=data.test.copy())
        rule = pass_rule(params["min_accuracy"], params["min_macro_f1"], params["max_ece"])

        def counts(idx: np.ndarray) -> list[int]:
            return np.bincount(data.labels[idx], minlength=k).tolist()

        # the public data, handed to the sandbox read-only as one file (never the source)
        payload = {
            "class_names": classes,
            "train_texts": [data.texts[i] for i in data.train],
            "y_train": data.labels[data.train].tolist(),
            "val_texts": [data.texts[i] for i in data.val],
            "y_val": data.labels[data.val].tolist(),
            "test_texts": [data.texts[i] for i in data.test],
        }
        run_dir.public.mkdir(parents=True, exist_ok=True)
        (run_dir.public / DATA_FILE).write_text(
            json.dumps(payload, ensure_ascii=False), encoding="utf-8"
        )
        del payload

        def load_tool(inp: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
            code = (
                "import json\nimport numpy as np\n"
                f"with open({f'{DATA_SUBDIR}/{DATA_FILE}'!r}, encoding='utf-8') as _f:\n"
                "    _d = json.load(_f)\n"
                "class_names = _d['class_names']\n"
                "train_texts, val_texts, test_texts = "
                "_d['train_texts'], _d['val_texts'], _d['test_texts']\n"
                "y_train = np.asarray(_d['y_train'], dtype=np.int64)\n"
                "y_val = np.asarray(_d['y_val'], dtype=np.int64)\n"
                "del _d, _f\n"
            )
            res = ctx.sandbox.execute(code, timeout=ctx.time_limit_s) if ctx.sandbox else None
            if res is None or res.error:
                why = "this run has no sandbox" if res is None else res.error
                msg = f"could not load the dataset into the sandbox: {why}"
                return ToolOutcome(output={"error": msg}, error=msg)
            return ToolOutcome(
                output={
                    "message": "Dataset loaded. Access train_texts, y_train, val_texts, y_val, "
                    "test_texts (no labels) and class_names in python_expression.",
                    "train_size": int(data.train.size),
                    "val_size": int(data.val.size),
                    "test_size": n_test,
                    "num_classes": k,
                    "class_names": classes,
                    "train_class_counts": counts(data.train),
                    "val_class_counts": counts(data.val),
                    "submission_shape": [n_test, k],
                }
            )

        def reveal(emit: Callable[[Event], Event]) -> str:
            rel = "artifacts/test_labels.npy"
            if not sec.revealed:
                np.save(run_dir.path / rel, sec.y_test)
                np.save(run_dir.path / "artifacts/test_rows.npy", sec.test_rows)
                sec.revealed = True
                emit(Artifact(name="test labels", path=rel, mime="application/x-npy"))
                emit(
                    Artifact(
                        name="test rows (0-based rows of the source file)",
                        path="artifacts/test_rows.npy",
                        mime="application/x-npy",
                    )
                )
            return rel

        def submit_tool(inp: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
            name = inp.get("probabilities_file")
            try:
                path = resolve_submission(
                    ctx.run_dir.work, name, field="probabilities_file", example=PROBABILITIES_FILE
                )
                probs = validate_probabilities(load_npy(path), n_test, k, name=str(name))
            except SubmissionError as e:
                return ToolOutcome(output={"error": str(e)}, error=str(e))
            metrics, details = score_probabilities(probs, sec.y_test, classes)
            passed, checks = evaluate(rule, metrics)
            details.update(
                {
                    "submission": name,
                    "source": data.source,
                    "pool": int(params["pool"]),
                    "sizes": list(params["sizes"]),
                    "split_seed": int(params["split_seed"]),
                    "test_class_counts": counts(data.test),
                    "test_labels": reveal(ctx.emit),
                }
            )
            grade = Grade(
                metrics=metrics,
                criteria=rule.text(),
                checks=checks,
                passed=passed,
                submitted=True,
                step=ctx.step,
                details=details,
            )
            return ToolOutcome(
                output={
                    "message": "Probabilities submitted and graded.",
                    **{
                        m: round(metrics[m], 4)
                        for m in ("accuracy", "macro_f1", "ece", "nll", "brier")
                    },
                    "passed": passed,
                },
                grade=grade,
            )

        tools = [
            ToolSpec(
                "load_dataset",
                "Load the data into the Python sandbox: train_texts, y_train, val_texts, "
                "y_val, test_texts (unlabelled) and class_names. Call this first.",
                {"type": "object", "properties": {}},
                load_tool,
            ),
            python_expression_tool(),
            ToolSpec(
                "submit_probabilities",
                f"Submit the saved class probabilities of the test texts: a .npy file in "
                f"the working directory holding a float array of shape ({n_test}, {k}), "
                "rows in test_texts order, columns in class_names order, each row "
                "summing to 1. A valid submission is graded and ends the task.",
                {
                    "type": "object",
                    "properties": {
                        "probabilities_file": {
                            "type": "string",
                            "description": "file name, e.g. 'probabilities.npy'",
                        }
                    },
                    "required": ["probabilities_file"],
                },
                submit_tool,
            ),
        ]
        prompt = PROMPT.format(
            k=k,
            classes="\n".join(f"  {i}: {c}" for i, c in enumerate(classes)),
            n_train=int(data.train.size),
            n_val=int(data.val.size),
            n_test=n_test,
            last=k - 1,
            criteria=rule.text(),
            bins=ECE_BINS,
            max_steps=params["max_steps"],
        )
        policy = [
            ScriptedStep("load_dataset", {}, "I'll load the data first."),
            ScriptedStep(
                "python_expression",
                {"code": calibration_code(seed=0)},
                "TF-IDF features and a small MLP trained with the engine's trainer "
                "(seed 004's model), then one temperature fitted on the validation "
                "set to calibrate the probabilities; saving the test probabilities.",
            ),
            ScriptedStep(
                "submit_probabilities",
                {"probabilities_file": PROBABILITIES_FILE},
                "Submitting the calibrated test probabilities.",
            ),
        ]
        shown = dict(params)
        shown["sizes"] = "/".join(map(str, params["sizes"]))
        shown["source_file"] = "hidden until grading"  # the grade says which file
        return TaskInstance(
            system="",
            prompt=prompt,
            tools=tools,
            submit_tool="submit_probabilities",
            max_steps=params["max_steps"],
            sandbox_setup="import numpy as np",
            params=shown,
            seed=int(params["split_seed"]),
            reference_policy=policy,
            on_end=reveal,
            hidden_paths=_source_paths(params, data.source),
        )
