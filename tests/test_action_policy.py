"""The action-policy task (seed 004): label mapping, split, submission checks, grading,
and full scripted runs through the runner."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentdeck.engine import metrics as m
from agentdeck.engine.events import Event
from agentdeck.engine.log import RunDir
from agentdeck.engine.registry import get_task
from agentdeck.engine.task import TaskParamError
from agentdeck.engine.tools import ToolContext
from agentdeck.tasks.action_policy.grading import agent_loop_proxy
from agentdeck.tasks.action_policy.labels import ACTIONS, map_to_actions, text_hash_parity
from agentdeck.tasks.action_policy.split import SplitSizeError, stratified_split, suggest_sizes

TOPIC_WORDS = {
    1: "government election minister troops president embassy talks rebels",
    2: "team season coach game league score playoff striker",
    3: "shares profit market earnings stocks investors oil bank",
    4: "software internet computer space researchers chip wireless google",
}
FILLER = ["the", "a", "of", "to", "in", "and", "for", "on", "with", "said", "new", "after"]


def write_ag_csv(path: Path, n: int, seed: int = 0) -> Path:
    """An AG-News-layout CSV (no header; class 1-4, title, description) whose words
    carry the topic, so a model can learn it."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        for i in range(n):
            topic = i % 4 + 1
            words = TOPIC_WORDS[topic].split()
            title = " ".join(rng.choice(words, 3)) + f" {i}"
            desc = " ".join(list(rng.choice(words, 6)) + list(rng.choice(FILLER, 6)))
            w.writerow([str(topic), title.title(), desc])
    return path


class _Emit:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, ev: Event) -> Event:
        self.events.append(ev)
        return ev


def _ctx(run_dir: RunDir, emit: _Emit) -> ToolContext:
    return ToolContext(
        run_dir=run_dir,
        sandbox=None,
        emit=emit,
        step=3,
        call_id="c1",
        time_limit_s=60.0,
        stop=threading.Event(),
    )


# -- label mapping -----------------------------------------------------------------------


def test_topics_map_to_actions_and_sci_tech_splits_by_sha256_parity() -> None:
    titles = ["w", "s", "b", "a", "Title"]
    descs = ["x", "y", "z", "b", "Desc"]
    out = map_to_actions([0, 1, 2, 3, 3], titles, descs)
    # World, Sports, Business map one to one; Sci/Tech by SHA-256("a b")[0] = 200 (even)
    # -> ContractUpdate, SHA-256("Title Desc")[0] = 240 (even) -> ContractUpdate
    assert out.tolist() == [0, 1, 2, 3, 3]
    assert ACTIONS[3] == "ContractUpdate" and ACTIONS[4] == "WholeRepoRegenerate"
    # an odd first byte: SHA-256("Hello World")[0] = 165 -> WholeRepoRegenerate
    assert map_to_actions([3], ["Hello"], ["World"]).tolist() == [4]
    for t, d in [("a", "b"), ("Hello", "World"), ("Ünïcode", "text")]:
        assert text_hash_parity(t, d) == hashlib.sha256(f"{t} {d}".encode()).digest()[0] % 2
    with pytest.raises(ValueError, match="topic 4"):
        map_to_actions([4], ["t"], ["d"])


def test_mapping_on_the_real_ag_news_test_split(shared_data: Path) -> None:
    from agentdeck.engine.datasets import load_ag_news

    ds = load_ag_news(shared_data / "ag-news-test" / "test.csv")
    y = map_to_actions(ds.labels, ds.titles, ds.descriptions)
    counts = np.bincount(y, minlength=5).tolist()
    assert counts[:3] == [1900, 1900, 1900]
    assert counts[3] + counts[4] == 1900 and counts[3:] == [931, 969]  # pinned: stable hash


# -- split ---------------------------------------------------------------------------------


def test_stratified_split_sizes_proportions_and_determinism() -> None:
    y = np.array([0] * 400 + [1] * 400 + [2] * 400 + [3] * 200 + [4] * 200)
    tr, va, te = stratified_split(y, (800, 400, 400), 42)
    assert (len(tr), len(va), len(te)) == (800, 400, 400)
    assert np.bincount(y[tr]).tolist() == [200, 200, 200, 100, 100]
    assert np.bincount(y[va]).tolist() == [100, 100, 100, 50, 50]
    assert np.bincount(y[te]).tolist() == [100, 100, 100, 50, 50]
    assert len(np.union1d(np.union1d(tr, va), te)) == 1600  # disjoint, all used
    again = stratified_split(y, (800, 400, 400), 42)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again, strict=True))
    other = stratified_split(y, (800, 400, 400), 7)
    assert not np.array_equal(te, other[2])


def test_split_with_leftover_rows_and_uneven_classes() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(5, size=777, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    tr, va, te = stratified_split(y, (400, 150, 150), 0)
    assert (len(tr), len(va), len(te)) == (400, 150, 150)
    assert len(set(tr) | set(va) | set(te)) == 700
    pool_share = np.bincount(y, minlength=5) / len(y)
    for part in (tr, va, te):
        counts = np.bincount(y[part], minlength=5)
        assert np.all(np.abs(counts - pool_share * len(part)) <= 1.0 + 1e-9)


def test_split_that_does_not_fit_suggests_sizes() -> None:
    with pytest.raises(
        SplitSizeError,
        match=r"need 9,000 rows but the pool has 7,600.*"
        r"sizes=4220/1690/1690",
    ):
        stratified_split(np.zeros(7600, dtype=int), (5000, 2000, 2000), 0)
    assert suggest_sizes(9000) == (5000, 2000, 2000)
    assert sum(suggest_sizes(7600)) == 7600


# -- parameters and data errors ------------------------------------------------------------


def test_parameters_parse_and_errors_are_clear(tmp_path: Path) -> None:
    task = get_task("action-policy")
    p = task.parse_params({"sizes": "400,100,100", "pool": "600"})
    assert p["sizes"] == (400, 100, 100) and p["pool"] == 600 and p["max_ece"] == 0.04
    with pytest.raises(TaskParamError, match="three sizes"):
        task.parse_params({"sizes": "400/100"})
    with pytest.raises(TaskParamError, match="max_ece"):
        task.parse_params({"max_ece": "2"})
    csv_path = write_ag_csv(tmp_path / "ag.csv", 200)
    base = {"source": str(csv_path)}
    with pytest.raises(TaskParamError, match=r"has only 200 rows; use -T pool=200"):
        task.load_data(task.parse_params({**base, "pool": "300", "sizes": "100/100/100"}))
    with pytest.raises(TaskParamError, match=r"needs 9,000 rows but -T pool=200"):
        task.load_data(task.parse_params({**base, "pool": "200"}))
    with pytest.raises(TaskParamError, match="does not exist"):
        task.load_data(
            task.parse_params(
                {"source": str(tmp_path / "nope.csv"), "pool": "200", "sizes": "100/50/50"}
            )
        )
    only_world = tmp_path / "world.csv"
    only_world.write_text("".join(f'"1","t{i}","d{i}"\n' for i in range(60)), encoding="utf-8")
    with pytest.raises(TaskParamError, match="0 rows of action TargetedRegenerate"):
        task.load_data(
            task.parse_params({"source": str(only_world), "pool": "60", "sizes": "30/15/15"})
        )


# -- submissions -----------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path: Path) -> tuple[Any, RunDir, dict[str, Any]]:
    task = get_task("action-policy")
    csv_path = write_ag_csv(tmp_path / "ag.csv", 240)
    params = task.parse_params({"source": str(csv_path), "pool": "240", "sizes": "120/60/60"})
    run_dir = RunDir.create(tmp_path / "logs", "r1")
    inst = task.setup(params, run_dir)
    tools = {t.name: t for t in inst.tools}
    return inst, run_dir, tools


def _submit(
    tools: dict[str, Any], run_dir: RunDir, arr: Any, name: str = "p.npy", emit: _Emit | None = None
) -> Any:
    if arr is not None:
        np.save(run_dir.work / name, arr, allow_pickle=True)
    return tools["submit_probabilities"].handler(
        {"probabilities_file": name}, _ctx(run_dir, emit or _Emit())
    )


def _uniform(n: int = 60) -> np.ndarray:
    return np.full((n, 5), 0.2)


@pytest.mark.parametrize(
    ("arr", "pattern"),
    [
        (np.full((59, 5), 0.2), r"shape \(59, 5\); expected \(60, 5\)"),
        (np.full((5, 60), 0.2), r"transposed"),
        (np.zeros(60, dtype=np.int64), r"one class label per text"),
        (np.full((60, 4), 0.25), r"exactly 5 columns"),
        (np.full((60, 5), 0.3), r"row 0 of p.npy sums to 1.5, not 1 \(60 of 60 rows.*softmax"),
        (
            np.vstack([_uniform(59), [[0.5, 0.6, -0.1, 0.0, 0.0]]]),
            r"p.npy\[59, 2\] = -0.1 is negative.*logits",
        ),
        (
            np.vstack([_uniform(10), [[np.nan, 0.2, 0.2, 0.2, 0.2]], _uniform(49)]),
            r"p.npy\[10, 0\] is NaN",
        ),
        (np.vstack([_uniform(3), [[np.inf, 0, 0, 0, 0]], _uniform(56)]), r"infinite"),
        (np.full((60, 5), True), r"dtype bool"),
        (np.array([[{"a": 1}] * 5] * 60, dtype=object), r"pickled"),
    ],
)
def test_every_submission_fault_is_a_clear_tool_error(
    instance: Any, arr: np.ndarray, pattern: str
) -> None:
    _inst, run_dir, tools = instance
    out = _submit(tools, run_dir, arr)
    assert out.grade is None
    assert out.error is not None and out.output == {"error": out.error}
    assert re.search(pattern, out.error), out.error


def test_one_bad_row_is_named_with_its_sum(instance: Any) -> None:
    _inst, run_dir, tools = instance
    arr = _uniform()
    arr[17] = [0.5, 0.5, 0.5, 0.0, 0.0]
    out = _submit(tools, run_dir, arr)
    assert "row 17 of p.npy sums to 1.5, not 1 (1 of 60 rows" in out.error


def test_missing_and_outside_files_are_rejected(instance: Any, tmp_path: Path) -> None:
    _inst, run_dir, tools = instance
    out = _submit(tools, run_dir, None, "missing.npy")
    assert "does not exist" in out.error and out.grade is None
    np.save(tmp_path / "outside.npy", _uniform())
    out = _submit(tools, run_dir, None, "../../outside.npy")
    assert "outside the working directory" in out.error
    out = _submit(tools, run_dir, None, str(tmp_path / "outside.npy"))
    assert "outside the working directory" in out.error


def test_rows_within_tolerance_are_accepted(instance: Any) -> None:
    _inst, run_dir, tools = instance
    arr = _uniform().astype(np.float32)
    arr[:, 0] += 5e-4  # float32 rounding-size errors pass and are renormalised
    out = _submit(tools, run_dir, arr)
    assert out.error is None and out.grade is not None


def test_a_valid_submission_is_graded_and_reveals_the_labels(instance: Any) -> None:
    _inst, run_dir, tools = instance
    assert not (run_dir.artifacts / "test_labels.npy").exists()  # secret until graded
    rng = np.random.default_rng(0)
    probs = m.softmax(rng.normal(size=(60, 5)) * 2)
    emit = _Emit()
    out = _submit(tools, run_dir, probs, emit=emit)
    assert out.error is None
    g = out.grade
    y = np.load(run_dir.artifacts / "test_labels.npy")
    assert y.shape == (60,) and np.bincount(y, minlength=5).min() >= 1
    pred = probs.argmax(1)
    assert g.metrics["accuracy"] == pytest.approx(m.accuracy(y, pred))
    assert g.metrics["macro_f1"] == pytest.approx(m.macro_f1(y, pred, 5))
    assert g.metrics["ece"] == pytest.approx(m.expected_calibration_error(probs, y))
    assert g.metrics["nll"] == pytest.approx(m.nll(probs, y))
    assert g.metrics["brier"] == pytest.approx(m.brier_score(probs, y))
    for k in ("regeneration_scope", "mean_files_touched", "pass_at_budget_expected"):
        assert g.metrics[k] == pytest.approx(agent_loop_proxy(probs)[k])
    assert g.criteria == "accuracy >= 0.7 AND macro-F1 >= 0.6 AND ECE (10 bins) <= 0.04"
    assert [c.name for c in g.checks] == ["accuracy", "macro_f1", "ece"]
    cal = g.calibration()
    assert cal is not None and cal.class_names == list(ACTIONS)
    assert sum(b.count for b in cal.reliability) == 60
    assert g.passed is False  # random probabilities
    d = g.details
    assert d["class_names"] == list(ACTIONS)
    assert d["confusion_matrix"] == m.confusion_matrix(y, pred, 5).tolist()
    assert all(
        set(r) == {"bin_lo", "bin_hi", "confidence", "accuracy", "count"} for r in d["reliability"]
    )
    assert sum(r["count"] for r in d["reliability"]) == 60
    assert d["per_class_recall"] == pytest.approx(m.per_class_recall(y, pred, 5).tolist(), abs=1e-6)
    json.dumps(g.to_dict(), allow_nan=False)  # the log can write it
    assert any(getattr(e, "path", "") == "artifacts/test_labels.npy" for e in emit.events)
    # the true labels pass with one-hot probabilities
    onehot = np.eye(5)[y] * 0.98 + 0.004
    perfect = _submit(tools, run_dir, onehot, "perfect.npy").grade
    assert perfect.metrics["accuracy"] == 1.0 and perfect.passed


def test_load_tool_without_sandbox_says_so(instance: Any) -> None:
    inst, run_dir, tools = instance
    out = tools["load_dataset"].handler({}, _ctx(run_dir, _Emit()))
    assert out.error and "no sandbox" in out.error
    # the public data is handed over read-only, prepared at setup
    data = json.loads((run_dir.public / "action_policy.json").read_text())
    assert set(data) == {
        "class_names",
        "train_texts",
        "y_train",
        "val_texts",
        "y_val",
        "test_texts",
    }  # no test labels in the sandbox's reach
    assert len(data["train_texts"]) == 120 and len(data["test_texts"]) == 60
    assert inst.prompt.count("(60, 5)") >= 1 and "ECE" in inst.prompt


# -- full runs -------------------------------------------------------------------------------


def _run(tmp_path: Path, params: dict[str, str]) -> Any:
    from agentdeck.engine.run import RunConfig, execute, prepare

    return execute(
        prepare(
            RunConfig(
                task="action-policy", params=params, agent="scripted", log_dir=tmp_path / "logs"
            )
        )
    )


def test_scripted_run_on_a_small_csv_completes_with_a_grade(tmp_path: Path) -> None:
    pytest.importorskip("agentdeck.engine.sandbox.kernel")
    csv_path = write_ag_csv(tmp_path / "ag.csv", 400)
    res = _run(tmp_path, {"source": str(csv_path), "pool": "400", "sizes": "240/80/80"})
    assert res.status == "completed", res.message
    g = res.grade
    assert g is not None and g.submitted
    assert g.metrics["n_test"] == 80
    assert g.metrics["accuracy"] > 0.5  # the topic words are learnable
    events = [json.loads(line) for line in res.run_dir.events.read_text().splitlines()]
    names = {e["name"] for e in events if e["type"] == "metric"}
    assert {"train_loss", "val_loss", "temperature", "val_ece_after_scaling"} <= names
    assert (res.run_dir.artifacts / "test_labels.npy").exists()
    assert (res.run_dir.work / "probabilities_uncalibrated.npy").exists()
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "completed"


@pytest.mark.slow
def test_scripted_run_on_the_real_ag_news_test_split(tmp_path: Path, shared_data: Path) -> None:
    pytest.importorskip("agentdeck.engine.sandbox.kernel")
    src = shared_data / "ag-news-test" / "test.csv"
    res = _run(tmp_path, {"source": str(src), "pool": "7600", "sizes": "4000/1800/1800"})
    assert res.status == "completed", res.message
    g = res.grade
    print("\naction-policy on AG News test split:", {k: round(v, 4) for k, v in g.metrics.items()})
    assert g.passed, g.checks
    assert 0.70 <= g.metrics["accuracy"] <= 0.80
    assert g.metrics["ece"] <= 0.04


def test_labels_are_revealed_when_the_run_ends_unsubmitted(instance: Any) -> None:
    inst, run_dir, _tools = instance
    emit = _Emit()
    inst.on_end(emit)
    inst.on_end(emit)  # once only
    y = np.load(run_dir.artifacts / "test_labels.npy")
    assert y.shape == (60,)
    assert [getattr(e, "path", None) for e in emit.events] == [
        "artifacts/test_labels.npy",
        "artifacts/test_rows.npy",
    ]


def test_agent_loop_proxy_hand_example() -> None:
    p = np.array(
        [
            [0.6, 0.1, 0.1, 0.1, 0.1],  # scope 0.1 + 0.2 = 0.3
            [0.0, 0.2, 0.0, 0.0, 0.8],
        ]
    )  # scope 0.2 + 1.6 = 1.8
    r = agent_loop_proxy(p, budget=2)
    assert r["regeneration_scope"] == pytest.approx((0.3 + 1.8) / 2)
    assert r["mean_files_touched"] == pytest.approx(((1 + 4.5 * 0.3) + (1 + 4.5 * 1.8)) / 2)
    # p_success 0.8 and 0.9; two tries: 1 - 0.2^2 = 0.96, 1 - 0.1^2 = 0.99
    assert r["pass_at_budget_expected"] == pytest.approx((0.96 + 0.99) / 2)
    assert r["budget_iters"] == 2
    # the seed's 30 tries saturate: any row gives p_success >= 0.6, so 1 - 0.4^30 ~ 1
    assert agent_loop_proxy(p)["pass_at_budget_expected"] == pytest.approx(1.0)
