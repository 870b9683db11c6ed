"""noisy-labels: find the corrupted training labels (seed 000).

A faithful version of the seed task: its prompt, its three tools
(``load_corrupted_dataset``, ``python_expression``, ``submit_predictions``), 20
steps and its pass rule (F1 >= 0.65 AND (precision >= 0.55 OR recall >= 0.55)).
The corruption is made here, in the engine process, from a fresh random seed;
the sandbox only ever sees X_train, the noisy y_train, X_test and y_test. The
true noisy indices are written to the run's artifacts after grading.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentdeck.engine.events import Artifact, Event, Grade
from agentdeck.engine.grader import (
    AllOf,
    AnyOf,
    SubmissionError,
    Threshold,
    evaluate,
    load_npy,
    resolve_submission,
    validate_indices,
)
from agentdeck.engine.log import RunDir
from agentdeck.engine.metrics import detection_scores
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

PASS_RULE = AllOf(
    (
        Threshold("f1", ">=", 0.65, "F1"),
        AnyOf(
            (
                Threshold("precision", ">=", 0.55, "Precision"),
                Threshold("recall", ">=", 0.55, "Recall"),
            )
        ),
    )
)

#: Confusable class pairs for ``noise=pairs`` (each class maps to its partner).
PAIRS: dict[str, list[tuple[int, int]]] = {
    # T-shirt<->Shirt, Pullover<->Coat, Sandal<->Sneaker, Dress<->Trouser, Bag<->Ankle boot
    "fashion": [(0, 6), (2, 4), (5, 7), (3, 1), (8, 9)],
    # 4<->9, 3<->5, 1<->7, 2<->8, 0<->6
    "digits": [(4, 9), (3, 5), (1, 7), (2, 8), (0, 6)],
}
DATA_SUBDIR = DATA_DIR_NAME
PUBLIC_FILE = "noisy_labels.npz"
SECRETS_FILE = "artifacts/true_noisy_indices.npy"


def _opt_int(s: str) -> int | None:
    return None if s.lower() in ("", "none", "all") else int(s)


def _opt_count(s: str) -> int | None:
    n = _opt_int(s)
    if n is not None and n < 1:
        raise ValueError("must be a positive number of samples (or 'all')")
    return n


def _rate(s: str) -> float | None:
    if s.lower() in ("", "none", "random"):
        return None
    r = float(s)
    if not 0.0 < r < 1.0:
        raise ValueError("must be between 0 and 1 (e.g. 0.2)")
    return r


def _noise(s: str) -> str:
    if s not in ("symmetric", "pairs"):
        raise ValueError("must be 'symmetric' or 'pairs'")
    return s


PROMPT = """\
You are given a {title} dataset with corrupted labels. Approximately 15-20% of the training labels are incorrect due to annotation errors.

Your task: Identify which training samples have corrupted labels.

Available tools:
1. load_corrupted_dataset: Load the dataset (call this first)
2. python_expression: Run Python code to analyze data and implement detection methods
   - Libraries available: numpy (np), torch, sklearn
   - After loading, X_train, y_train, X_test, y_test are accessible
   - Variables persist across calls
3. submit_predictions: Submit a file containing your predictions
   - IMPORTANT: First save predictions using np.save('predictions.npy', noisy_indices_array)
   - Then call submit_predictions with predictions_file='predictions.npy'

Constraints:
- You CANNOT use the cleanlab library
- You must implement your own detection logic
- Maximum {max_steps} steps to solve this (one tool call per step)
- If you use torch consider using CUDA for faster execution.

Success criteria:
- Your predictions will be evaluated using F1 score (balance of precision and recall)
- Pass threshold: F1 ≥ 0.65 AND (Precision ≥ 0.55 OR Recall ≥ 0.55)
- Precision = (correctly identified noisy) / (total predicted noisy)
- Recall = (correctly identified noisy) / (actual noisy)
- This is a HARD threshold - simple approaches may not work!

{title} classes (0-{last}):
{classes}

Workflow:
1. Load dataset with load_corrupted_dataset
2. Implement detection method using python_expression
3. Save predictions: np.save('predictions.npy', your_noisy_indices_array)
4. Submit: submit_predictions(predictions_file='predictions.npy')"""

TITLES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "digits": "Digits (8x8)"}


def corrupt(
    y: np.ndarray,
    rate: float,
    kind: str,
    rng: np.random.Generator,
    pairs: list[tuple[int, int]],
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``round(rate * n)`` labels; returns (noisy labels, sorted flipped indices).

    ``symmetric``: each flipped label becomes a uniformly random *different* class.
    ``pairs``: it becomes its confusable partner (classes without one flip symmetrically).
    """
    n = len(y)
    k = int(round(rate * n))
    idx = np.sort(rng.choice(n, size=k, replace=False))
    noisy = y.copy()
    if kind == "symmetric":
        noisy[idx] = (y[idx] + rng.integers(1, num_classes, size=k)) % num_classes
    else:
        partner = np.full(num_classes, -1)
        for a, b in pairs:
            if a < num_classes and b < num_classes:
                partner[a], partner[b] = b, a
        p = partner[y[idx]]
        lone = p < 0
        p[lone] = (y[idx][lone] + rng.integers(1, num_classes, size=int(lone.sum()))) % num_classes
        noisy[idx] = p
    assert np.all(noisy[idx] != y[idx])
    return noisy, idx


def _source_paths(params: dict[str, Any]) -> tuple[Path, ...]:
    """What a sandbox must not read: the labelled source of the data. scikit-learn ships
    the digits inside its package; the IDX folder or data directory the user named."""
    out: list[Path] = []
    try:
        import sklearn.datasets

        base = Path(sklearn.datasets.__file__).parent
        out += [base / "data" / "digits.csv.gz", base / "descr" / "digits.rst"]
    except ImportError:
        pass
    spec = str(params.get("dataset", ""))
    if spec.startswith("idx:"):
        out.append(Path(spec[4:]).expanduser().resolve())
    from agentdeck.engine.data.paths import data_dir as resolve_data_dir

    out.append(Path(resolve_data_dir(params.get("data_dir"))).resolve())
    return tuple(out)


@dataclass
class _Secrets:
    seed: int
    seed_given: bool
    rate: float
    true_idx: np.ndarray
    revealed: bool = False


class NoisyLabelsTask(Task):
    name = "noisy-labels"
    description = (
        "Find the ~15-20% corrupted training labels of an image dataset "
        "(seed 000: Fashion-MNIST); graded by F1."
    )
    prompt_marks = ("corrupted labels",)
    params = (
        Param(
            "dataset",
            "fashion-mnist",
            "fashion-mnist | mnist | digits (offline, scikit-learn) | idx:PATH (IDX folder; "
            "the path is hidden until grading)",
        ),
        Param("n_train", None, "use only the first N training samples", _opt_count, "all"),
        Param("noise_rate", None, "fraction of labels flipped", _rate, "random in 0.15-0.20"),
        Param(
            "noise", "symmetric", "symmetric (any other class) | pairs (confusable pairs)", _noise
        ),
        Param(
            "seed",
            None,
            "seed of the corruption (hidden until grading)",
            _opt_int,
            "fresh random",
            secret=True,
        ),
        Param(
            "data_dir",
            None,
            "where the dataset files are (else $AGENTDECK_DATA, ~/.cache/agentdeck)",
            str,
            "auto",
            secret=True,
        ),
        Param("download", True, "download missing Fashion-MNIST/MNIST files", parse_bool),
        Param("max_steps", 20, "steps (model calls) allowed", int),
    )

    def secret_params(self, params: dict[str, Any]) -> set[str]:
        hidden = super().secret_params(params)
        if str(params.get("dataset", "")).startswith("idx:"):
            hidden.add("dataset")  # the path to the source files
        return hidden

    def setup(
        self, params: dict[str, Any], run_dir: RunDir, progress: ProgressFn | None = None
    ) -> TaskInstance:
        from agentdeck.engine.datasets import DatasetUnavailable, load_image_dataset
        from agentdeck.engine.sandbox.tool import python_expression_tool

        seed_given = params["seed"] is not None
        seed = int(params["seed"]) if seed_given else secrets.randbits(32)
        rng = np.random.default_rng(seed)
        rate = (
            params["noise_rate"]
            if params["noise_rate"] is not None
            else float(rng.uniform(0.15, 0.20))
        )
        try:
            ds = load_image_dataset(
                params["dataset"],
                data_dir=params["data_dir"],
                download=params["download"],
                n_train=params["n_train"],
                progress=progress,
            )
        except DatasetUnavailable:
            raise
        except (ValueError, OSError) as e:  # a malformed file or folder given by the user
            where = "n_train" if "n_train" in str(e) else "dataset"
            raise TaskParamError(f"-T {where}={params[where]}: {e}") from e
        num_classes = len(ds.class_names)
        pairs = PAIRS["fashion" if "fashion" in ds.name.lower() else "digits"]
        y_noisy, true_idx = corrupt(
            ds.y_train.astype(np.int64), rate, params["noise"], rng, pairs, num_classes
        )
        sec = _Secrets(seed=seed, seed_given=seed_given, rate=rate, true_idx=true_idx)
        n = len(y_noisy)
        # the public data, handed to the sandbox read-only as one file (never the source)
        arrays = {
            "X_train": ds.X_train,
            "y_train": y_noisy,
            "X_test": ds.X_test,
            "y_test": ds.y_test,
        }
        run_dir.public.mkdir(parents=True, exist_ok=True)
        present: dict[str, Any] = {k: v for k, v in arrays.items() if v is not None}
        np.savez(run_dir.public / PUBLIC_FILE, **present)
        code = (
            "import numpy as np\n"
            f"with np.load({f'{DATA_SUBDIR}/{PUBLIC_FILE}'!r}) as _d:\n"
            + "".join(
                f"    {k} = _d[{k!r}]\n" if v is not None else f"    {k} = None\n"
                for k, v in arrays.items()
            )
            + "del _d\n"
        )

        def load_tool(inp: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
            if ctx.sandbox is None:
                msg = "could not load the dataset: this run has no Python sandbox"
                return ToolOutcome(output={"error": msg}, error=msg)
            res = ctx.sandbox.execute(code, timeout=ctx.time_limit_s)
            if res.error:
                msg = f"could not load the dataset into the sandbox: {res.error}"
                return ToolOutcome(output={"error": msg}, error=msg)
            return ToolOutcome(
                output={
                    "message": "Dataset loaded successfully. Access via X_train, y_train, X_test, "
                    "y_test in python_expression tool.",
                    "train_size": int(n),
                    "test_size": int(0 if ds.X_test is None else len(ds.X_test)),
                    "num_classes": num_classes,
                    "noise_rate": round(rate, 2),
                }
            )

        def reveal(emit: Callable[[Event], Event]) -> None:
            """At the run's end (graded or not): the secrets, now that no agent can use them."""
            if not sec.revealed:
                np.save(run_dir.path / SECRETS_FILE, sec.true_idx)
                sec.revealed = True
                emit(
                    Artifact(name="true noisy indices", path=SECRETS_FILE, mime="application/x-npy")
                )

        def submit_tool(inp: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
            try:
                path = resolve_submission(
                    ctx.run_dir.work,
                    inp.get("predictions_file"),
                    field="predictions_file",
                    example="predictions.npy",
                )
                pred = validate_indices(load_npy(path), n)
            except SubmissionError as e:
                return ToolOutcome(output={"error": str(e)}, error=str(e))
            metrics = detection_scores(pred, sec.true_idx)
            passed, checks = evaluate(PASS_RULE, metrics)
            grade = Grade(
                metrics=metrics,
                criteria=PASS_RULE.text(),
                checks=checks,
                passed=passed,
                submitted=True,
                step=ctx.step,
                details={
                    "submission": inp["predictions_file"],
                    "dataset": ds.name,
                    "n_train": n,
                    "noise": params["noise"],
                    "noise_rate": sec.rate,
                    "seed": sec.seed,
                    # written when the run ends, after this grade (see reveal)
                    "true_noisy_indices": SECRETS_FILE,
                },
            )
            return ToolOutcome(
                output={
                    "message": "Predictions submitted and graded.",
                    "f1": round(metrics["f1"], 4),
                    "precision": round(metrics["precision"], 4),
                    "recall": round(metrics["recall"], 4),
                    "passed": passed,
                },
                grade=grade,
            )

        tools = [
            ToolSpec(
                "load_corrupted_dataset",
                "Load the dataset with corrupted labels into the Python sandbox as "
                "X_train, y_train (noisy), X_test, y_test. Call this first.",
                {"type": "object", "properties": {}},
                load_tool,
            ),
            python_expression_tool(),
            ToolSpec(
                "submit_predictions",
                "Submit the saved indices of the training samples whose labels you "
                "believe are corrupted (a 1-D integer .npy file in the working "
                "directory). A valid submission is graded and ends the task.",
                {
                    "type": "object",
                    "properties": {
                        "predictions_file": {
                            "type": "string",
                            "description": "file name, e.g. 'predictions.npy'",
                        }
                    },
                    "required": ["predictions_file"],
                },
                submit_tool,
            ),
        ]
        title = TITLES.get(params["dataset"], ds.name)
        classes = ", ".join(f"{i}: {c}" for i, c in enumerate(ds.class_names))
        prompt = PROMPT.format(
            title=title, max_steps=params["max_steps"], last=num_classes - 1, classes=classes
        )
        from agentdeck.tasks.noisy_labels.reference import detection_code

        policy = [
            ScriptedStep("load_corrupted_dataset", {}, "I'll load the dataset first."),
            ScriptedStep(
                "python_expression",
                {"code": detection_code(seed=0)},
                "Out-of-fold class probabilities from a cross-fitted CNN + MLP "
                "ensemble show which given labels the data disagrees with; an "
                "estimate of how labels were flipped sets how many to flag. I'll "
                "save the flagged indices.",
            ),
            ScriptedStep(
                "submit_predictions",
                {"predictions_file": "predictions.npy"},
                "Submitting the flagged indices.",
            ),
        ]
        shown = dict(params)
        shown["noise_rate"] = "hidden until grading" if params["noise_rate"] is None else rate
        shown["seed"] = seed if seed_given else "hidden until grading"
        return TaskInstance(
            hidden_paths=_source_paths(params),
            system="",
            prompt=prompt,
            tools=tools,
            submit_tool="submit_predictions",
            max_steps=params["max_steps"],
            sandbox_setup="import numpy as np",
            params=shown,
            seed=seed if seed_given else None,
            reference_policy=policy,
            on_end=reveal,
        )
