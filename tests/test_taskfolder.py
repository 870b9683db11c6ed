"""Task folders: task.toml checked with clear errors, `agentdeck task check` on a good and
on broken folders, folder tasks in `agentdeck tasks`, and a run of a folder by path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentdeck.engine.grader import AllOf, AnyOf, Threshold
from agentdeck.engine.log import RunLog
from agentdeck.engine.registry import get_task
from agentdeck.engine.taskfolder import (
    FolderTask,
    TaskFolderError,
    check_folder,
    load_spec,
    parse_rule,
)

AGENTDECK = Path(sys.executable).parent / "agentdeck"
EXAMPLE = Path(__file__).resolve().parents[1] / "tasks" / "examples" / "fmnist-repo"

TOML = """\
name = "parity"
description = "Is the number even?"
kind = "repo"

[budget]
max_steps = 6
tool_time_limit_s = 60

[metric]
name = "accuracy"
direction = "max"

[pass]
rule = "accuracy >= {{ bar }}"

[params]
n = { default = 30, type = "int", min = 4, help = "test rows" }
bar = { default = 0.9, type = "float", help = "pass bar" }

[reference]
files = ["solve.py"]
run = "python solve.py"
"""

DESCRIPTION = """\
Predict whether each of the {{ n_test }} numbers in `{{ data_dir }}/test.csv` is even.
Write `{{ submit_path }}` (`id,label`), then call {{ submit_tool }}. Pass: {{ pass_rule }}.
"""

PREPARE = """\
def prepare(ctx):
    n = ctx.params["n"]
    (ctx.public / "train.csv").write_text("x,even\\n" + "".join(f"{i},{1 - i % 2}\\n" for i in range(50)))
    (ctx.public / "test.csv").write_text("id,x\\n" + "".join(f"t{i},{i * 7}\\n" for i in range(n)))
    ctx.facts["n_test"] = n
    return {f"t{i}": 1 - (i * 7) % 2 for i in range(n)}
"""

GRADE = """\
from agentdeck.engine.grader import SubmissionError, read_csv_submission

def grade(submission, answers, ctx):
    rows = read_csv_submission(submission, columns=("id", "label"), ids=list(answers))
    ok = 0
    for key, want in answers.items():
        label = rows[key]["label"]
        if label not in ("0", "1"):
            raise SubmissionError(f"label {label!r} of {key} is not 0 or 1")
        ok += int(label) == want
    return {"accuracy": ok / len(answers)}

def perfect_submission(answers, path):
    path.write_text("id,label\\n" + "".join(f"{k},{v}\\n" for k, v in answers.items()))
"""

SOLVE = '''\
"""Even numbers are labelled 1."""
import csv
from pathlib import Path

rows = list(csv.DictReader(open(".agentdeck_data/test.csv")))
Path("submission").mkdir(exist_ok=True)
out = "id,label\\n" + "".join(f"{r['id']},{1 - int(r['x']) % 2}\\n" for r in rows)
Path("submission/submission.csv").write_text(out)
print("Final Validation Metric: 1.0")
'''


def make_folder(root: Path, **files: str | None) -> Path:
    d = root / "parity"
    (d / "reference").mkdir(parents=True, exist_ok=True)
    content = {
        "task.toml": TOML,
        "description.md": DESCRIPTION,
        "prepare.py": PREPARE,
        "grade.py": GRADE,
        "reference/solve.py": SOLVE,
    }
    content.update({k.replace("__", "/"): v for k, v in files.items()})
    for rel, text in content.items():
        p = d / rel
        if text is None:
            p.unlink(missing_ok=True)
        else:
            p.write_text(text)
    return d


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTDECK), *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


# -- task.toml ----------------------------------------------------------------------------


def test_a_good_folder_loads(tmp_path: Path) -> None:
    spec = load_spec(make_folder(tmp_path))
    assert (spec.name, spec.kind, spec.tools) == (
        "parity",
        "repo",
        ("bash", "str_replace_based_edit_tool"),
    )
    assert (spec.metric, spec.direction, spec.max_steps) == ("accuracy", "max", 6)
    assert spec.submit_tool == "submit" and spec.submit_path == "submission/submission.csv"
    task = FolderTask(spec)
    assert [p.name for p in task.params] == ["n", "bar"]
    assert task.parse_params({"n": "8"}) == {"n": 8, "bar": 0.9}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task.toml": None}, "no task.toml here"),
        ({"task.toml": "name = "}, "not valid TOML"),
        ({"task.toml": TOML + "\n[extra]\n"}, "unknown key(s) 'extra'"),
        ({"task.toml": TOML.replace('kind = "repo"', 'kind = "game"')}, "`kind` must be one of"),
        ({"task.toml": TOML.replace('name = "parity"', 'name = "Bad Name"')}, "`name`"),
        (
            {"task.toml": TOML.replace('kind = "repo"', 'kind = "repo"\ntools = ["vim"]')},
            "unknown tool 'vim'",
        ),
        ({"task.toml": TOML.replace("max_steps = 6", "max_steps = 0")}, "at least 1"),
        ({"task.toml": TOML.replace('"accuracy >= {{ bar }}"', '"accuracy >>= 1"')}, "pass rule"),
        ({"task.toml": TOML.replace("{{ bar }}", "{{ nope }}")}, "is not a parameter"),
        ({"task.toml": TOML.replace('type = "int"', 'type = "list"')}, "`type` must be one of"),
        ({"task.toml": TOML.replace("default = 30", 'default = "x"')}, "`default` 'x'"),
        ({"task.toml": TOML.replace('direction = "max"', 'direction = "up"')}, "max or min"),
        ({"grade.py": None}, "grade.py is missing"),
        ({"task.toml": TOML.replace("[metric]", "[metric]\nself_report = '(x'")}, "regular"),
    ],
)
def test_broken_toml_is_refused_with_a_clear_message(
    tmp_path: Path, change: dict[str, str | None], message: str
) -> None:
    folder = make_folder(tmp_path, **{k.replace("/", "__"): v for k, v in change.items()})
    with pytest.raises(TaskFolderError) as info:
        load_spec(folder)
    assert message in str(info.value)
    assert str(folder) in str(info.value)


def test_parse_rule() -> None:
    r = parse_rule("accuracy >= 0.8 AND (f1 > {{ t }} or recall >= .5)", {"t": 0.25})
    assert isinstance(r, AllOf) and isinstance(r.parts[1], AnyOf)
    assert r.text() == "accuracy >= 0.8 AND (f1 > 0.25 OR recall >= 0.5)"
    assert parse_rule("ece <= 0.04", {}) == Threshold("ece", "<=", 0.04)
    for bad in ("accuracy", "accuracy >= ", "(accuracy >= 1", "accuracy >= 1 1", "a = 1"):
        with pytest.raises(TaskFolderError):
            parse_rule(bad, {})


# -- agentdeck task check -----------------------------------------------------------------


def test_check_a_good_folder(tmp_path: Path) -> None:
    report = check_folder(make_folder(tmp_path))
    names = [i.name for i in report.items]
    assert report.ok, [(i.name, i.detail) for i in report.items if not i.ok]
    assert names[:5] == ["task.toml", "python files", "prepare", "prompt", "perfect submission"]
    assert {"refuses: empty", "refuses: missing rows", "refuses: NaN value"} <= set(names)
    assert names[-1] == "reference"


def test_check_the_built_in_example() -> None:
    r = cli("task", "check", str(EXAMPLE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all 14 checks passed" in r.stdout and "refuses: label out of range" in r.stdout


@pytest.mark.parametrize(
    "change, failing, detail",
    [
        (
            {"prepare.py": PREPARE.replace("n = ctx.params", "n = ctx.parms")},
            "prepare",
            "line 2 (prepare): AttributeError",
        ),
        ({"prepare.py": "def prepare(ctx)\n    pass\n"}, "python files", "syntax error"),
        (
            {
                "grade.py": GRADE.replace(
                    "    rows = read_csv_submission",
                    '    return {"accuracy": 1.0}\n    rows = read_csv_submission',
                )
            },
            "refuses: empty",
            "accepted a broken submission",
        ),
        (
            {"grade.py": GRADE.replace("def perfect_submission", "def _unused")},
            "perfect submission",
            "defines no perfect_submission",
        ),
        (
            {"task.toml": TOML.replace("{{ bar }}", "1.5")},
            "perfect submission",
            "does NOT pass",
        ),
        (
            {"grade.py": GRADE.replace('{"accuracy": ok', '{"acc": ok')},
            "perfect submission",
            "returned no 'accuracy'",
        ),
        ({"description.md": "Use {{ mystery }}."}, "prompt", "{{ mystery }} is neither"),
        ({"reference/solve.py": None}, "reference", "missing in reference/: solve.py"),
    ],
)
def test_check_broken_folders(
    tmp_path: Path, change: dict[str, str | None], failing: str, detail: str
) -> None:
    folder = make_folder(tmp_path, **{k.replace("/", "__"): v for k, v in change.items()})
    report = check_folder(folder)
    assert not report.ok
    bad = {i.name: i.detail for i in report.items if not i.ok}
    assert failing in bad, bad
    assert detail in bad[failing]


def test_check_cli_exit_codes(tmp_path: Path) -> None:
    good = make_folder(tmp_path)
    r = cli("task", "check", str(good))
    assert r.returncode == 0 and "checks passed" in r.stdout
    (good / "prepare.py").write_text("def prepare(ctx):\n    raise KeyError('oops')\n")
    r = cli("task", "check", str(good))
    assert r.returncode == 1 and "✗ prepare" in r.stdout and "KeyError" in r.stdout
    r = cli("task", "check", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "no such folder" in r.stderr and "Traceback" not in r.stderr


# -- listing and running ------------------------------------------------------------------------


def test_tasks_lists_folder_tasks(tmp_path: Path) -> None:
    make_folder(tmp_path / "mine")
    r = cli("tasks", str(tmp_path / "mine"))
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "fmnist-repo (repo task, folder" in out
    assert "parity (repo task, folder" in out and "pass accuracy >= 0.9" in out
    assert "min_accuracy 0.8" in out and "n_train all" in out


def test_get_task_takes_a_path(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    assert get_task(str(folder)).name == "parity"
    t = get_task("fmnist-repo")
    assert isinstance(t, FolderTask) and t.folder == EXAMPLE
    with pytest.raises(TaskFolderError, match=r"no task\.toml here"):
        get_task(str(tmp_path))


@pytest.mark.slow
def test_run_a_folder_by_path(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "tasks")
    r = cli(
        "run", "./tasks/parity", "-T", "n=12", "--no-ui", "--log-dir", str(tmp_path / "logs"),
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = (tmp_path / "logs").iterdir()
    log = RunLog.open(run)
    assert log.header is not None and log.header.task == "parity"
    assert [t["name"] for t in log.header.tools] == [
        "bash",
        "str_replace_based_edit_tool",
        "submit",
    ]
    g = log.grade
    assert g is not None and g.passed and g.metrics["accuracy"] == 1.0
    assert g.details["self_reported"]["validation"] == 1.0
    assert g.metrics["test_minus_validation"] == 0.0
    assert "12 numbers" in log.header.prompt and str(folder) not in log.header.prompt
    # bad input for a folder task: one line, exit 2
    r = cli("run", "./tasks/parity", "-T", "n=2", "--no-ui", cwd=tmp_path)
    assert r.returncode == 2 and "must be at least 4" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", "./tasks/nope", "--no-ui", cwd=tmp_path)
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_a_long_folder_path_is_listed_whole(tmp_path: Path) -> None:
    """The listing leaves a folder's path in one piece to copy (the terminal wraps it),
    however narrow the output: rich would otherwise break it with a newline."""
    deep = tmp_path / ("a-long-folder-name-" * 6) / "mine"
    make_folder(deep)
    r = cli("tasks", str(deep))
    assert r.returncode == 0, r.stderr
    assert f"{deep / 'parity'}  (repo task, folder {deep / 'parity'})" in r.stdout
