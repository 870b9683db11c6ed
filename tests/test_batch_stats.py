"""The batch summary's statistics and grids, without running anything."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from agentdeck.engine.batch.grid import (
    GridError,
    RunLimits,
    grid_from_cli,
    parse_cli_params,
    read_toml,
)
from agentdeck.engine.batch.stats import mean_se, pass_at_k, wilson


def brute_pass_at_k(outcomes: list[bool], k: int) -> float:
    """The fraction of k-subsets of the runs with at least one pass (what pass@k estimates)."""
    subsets = list(itertools.combinations(range(len(outcomes)), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_the_brute_force_count(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(outcomes, k), abs=1e-12)
        assert pass_at_k(n, c, n + 1) is None
        assert pass_at_k(n, c, 0) is None


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows floats; the product form does not
    v = pass_at_k(1000, 10, 500)
    assert 0.999 < v <= 1.0
    assert pass_at_k(1000, 0, 500) == 0.0
    assert pass_at_k(200, 1, 1) == pytest.approx(1 / 200)


def test_wilson_interval_known_values():
    # Wilson 95% intervals (z = 1.96): 5/10 -> [0.2366, 0.7634]; 0/10 -> [0, 0.2775]
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_mean_and_standard_error():
    assert mean_se([]) == (None, None)
    assert mean_se([0.5]) == (0.5, None)
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(math.sqrt(1.6666666666666667 / 4))


def test_cli_grid_expands_tasks_params_agents_and_models():
    def make() -> Any:
        return grid_from_cli(
            ["noisy-labels"],
            agents=["scripted", "claude"],
            models=["claude-haiku-4-5", "claude-sonnet-4-5"],
            params=["dataset=digits", "noise=symmetric,pairs"],
            epochs=3,
            seed_base=7,
            limits=RunLimits(),
            agent_options={"max_tokens": 100},
        )

    grid = make()
    configs = grid.configs()
    # 2 noise values x (scripted + claude x 2 models)
    assert len(configs) == 6
    assert [c.agent_model for c in configs[:3]] == [
        "scripted",
        "claude/claude-haiku-4-5",
        "claude/claude-sonnet-4-5",
    ]
    assert {c.params["noise"] for c in configs} == {"symmetric", "pairs"}
    assert configs[0].agent_options == {} and configs[1].agent_options == {"max_tokens": 100}
    assert grid.varying_keys() == {"noise"}
    # what is run decides the id, so the same command finds the same batch
    again = make()
    assert again.fingerprint() == grid.fingerprint()
    assert parse_cli_params(["sizes=4000/1800/1800", r"a=x\,y,z"]) == {
        "sizes": ["4000/1800/1800"],
        "a": ["x,y", "z"],
    }


def test_toml_grid(tmp_path: Path):
    p = tmp_path / "grid.toml"
    p.write_text(
        'name = "cmp"\nepochs = 2\nseed_base = 100\n'
        '[[task]]\nname = "noisy-labels"\nparams = { dataset = "digits", noise = ["symmetric", "pairs"], n_train = 300 }\n'
        '[[agent]]\nname = "scripted"\n'
        '[[agent]]\nname = "claude"\nmodels = ["claude-haiku-4-5"]\ntemperature = 0.5\n'
        "[limits]\nmax_steps = 5\ncost_limit = 1\n"
        '[batch]\njobs = 2\nretry = 1\nmax_cost = 3.5\nexecutor = "ray"\n'
    )
    grid, settings = read_toml(p)
    assert grid.epochs == 2 and grid.seed_base == 100
    assert grid.limits.max_steps == 5 and grid.limits.cost_limit_usd == 1.0
    assert next(c.params for c in grid.configs()) == {
        "dataset": "digits",
        "noise": "symmetric",
        "n_train": "300",
    }
    assert len(grid.configs()) == 4
    assert (settings.name, settings.jobs, settings.retry, settings.max_cost_usd) == (
        "cmp",
        2,
        1,
        3.5,
    )
    assert settings.executor == "ray"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('epochs = 2\n[[task]\nname = "x"\n', r"grid\.toml: line 2, column \d+: TOML syntax error"),
        ('[[task]]\nname = "noisy-labels"\nmodle = 1\n', r"\[\[task\]\] #1: unknown key 'modle'"),
        ('[[task]]\nname = "noisy-labels"\nparams = { noise = [] }\n', r"empty grid: -T noise"),
        ("epochs = 2\n", r"empty grid: no \[\[task\]\]"),
        ('epochs = "two"\n[[task]]\nname = "a"\n', r"epochs: expected an integer"),
        ('[[task]]\nname = "a"\n[[agent]]\nname = "scripted"\nmodel = "m"\n', "agent claude only"),
    ],
)
def test_bad_toml_grids_name_the_place(tmp_path, text, match):
    p = tmp_path / "grid.toml"
    p.write_text(text)
    with pytest.raises(GridError, match=match) as e:
        read_toml(p)
    assert "\n" not in str(e.value)
