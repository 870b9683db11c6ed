from __future__ import annotations

import re

import pytest

from agentdeck.engine.events import Grade, ModelResponse, RunEnd, ToolCall, ToolResult
from agentdeck.engine.log import RunLog
from agentdeck.engine.log.markdown import MarkdownError, export_markdown, import_markdown
from tests.helpers import write_run

# What the seed says about its 20 steps: (message id suffix, input tokens, output tokens, K).
SEED_STEPS = {
    1: ("msg_015dRV3T6u7p2XkQaFAhyt9N", 1422, 71, 2),
    4: ("msg_013RVYrMLmbMdZA3yENiect6", 2457, 325, 1),
    20: ("msg_01EnkQkKcJqrGgduUq5VNRQa", 15237, 268, 2),
}


def normalise(text: str) -> str:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def test_seed_imports_completely(seed_md):
    events = import_markdown(seed_md.read_text(), source=str(seed_md))
    log = RunLog.open(seed_md)
    assert log.format == "markdown"
    h = log.header
    assert h.model == "claude-haiku-4-5" and h.max_steps == 20
    assert h.started_at == "2025-11-08T23:11:27.952559"
    assert "Fashion-MNIST dataset with corrupted labels" in h.prompt
    assert h.prompt.rstrip().endswith("submit_predictions(predictions_file='predictions.npy')")
    assert log.step_numbers == list(range(1, 21))
    responses = [e for e in events if isinstance(e, ModelResponse)]
    calls = [e for e in events if isinstance(e, ToolCall)]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(responses) == len(calls) == len(results) == 20
    assert all(r.message_id.startswith("msg_01") and r.stop_reason == "tool_use" for r in responses)
    for step, (mid, tin, tout, k) in SEED_STEPS.items():
        rec = log.step(step)
        assert rec.response.message_id == mid
        assert rec.response.usage.input_tokens == tin
        assert rec.response.usage.output_tokens == tout
        assert rec.calls[0].call.block_index == k
    first = log.step(1).calls[0]
    assert first.call.name == "load_corrupted_dataset" and first.call.input == {}
    assert first.result.output["train_size"] == 60000
    code = log.step(2).calls[0].call.input["code"]
    assert 'print(f"X_train shape: {X_train.shape}")' in code
    assert log.step(2).calls[0].result.output["error"] is None
    assert log.step(2).text.startswith("Good! The dataset is loaded.")
    assert log.step(4).text == ""
    assert sum(r.usage.input_tokens for r in responses) == log.totals().input_tokens
    assert log.status == "max_steps_reached"
    g = log.grade
    assert isinstance(g, Grade) and g.passed is False and g.submitted is False
    assert isinstance(events[-1], RunEnd)


def test_seed_export_reproduces_the_seed(seed_md):
    original = seed_md.read_text()
    md = export_markdown(RunLog.open(seed_md))
    assert normalise(md) == normalise(original)
    assert md == original  # byte for byte, in fact


def test_jsonl_run_exports_and_reimports(tmp_path):
    p = tmp_path / "events.jsonl"
    write_run(p, steps=3)
    md = export_markdown(RunLog.open(p))
    assert "- Cache Read Input Tokens: 50" in md
    assert "- Cost (USD): 0.002000" in md
    assert "**Success:** True" in md and "- f1: 0.9000" in md
    back = tmp_path / "back.md"
    back.write_text(md)
    log = RunLog.open(back)
    assert log.step_numbers == [1, 2, 3]
    rec = log.step(3)
    assert rec.response.usage.cache_read_input_tokens == 50
    assert rec.response.cost_usd == pytest.approx(0.003)
    assert rec.calls[0].call.input == {"code": "print(3)"}
    assert log.grade.passed is True and log.grade.metrics["f1"] == 0.9
    assert log.status == "completed"
    assert normalise(export_markdown(log)) == normalise(md)


def test_backticks_in_output_do_not_break_fences(tmp_path):
    from agentdeck.engine.log.markdown import _fence

    block = _fence("a ``` b", "json")
    assert block.startswith("````json\n") and block.endswith("\n````")


def _damage(seed_md, old: str, new: str, count: int = 1) -> str:
    text = seed_md.read_text()
    assert old in text
    return text.replace(old, new, count)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("# Agent Run Log", "# Something else", "expected '# Agent Run Log'"),
        ("- ID: `msg_013RVYrMLmbMdZA3yENiect6`\n", "", "step 4 has no '- ID:' line"),
        (
            "- Input Tokens: 2457",
            "- Input Tokens: lots",
            "step 4: Input Tokens 'lots' is not a number",
        ),
        ("**Max Steps:** 20", "**Max Steps:** twenty", "Max Steps 'twenty' is not a number"),
        ("## Initial Prompt", "## Prompt", "expected '## Initial Prompt'"),
    ],
)
def test_damaged_seed_gives_a_located_error(seed_md, old, new, match):
    with pytest.raises(MarkdownError, match=match):
        import_markdown(_damage(seed_md, old, new), source="seed.md")


def test_truncated_seed_names_the_unclosed_block(seed_md):
    text = seed_md.read_text()
    cut = text[: text.index("X_train_t shape: torch.Size")]
    with pytest.raises(
        MarkdownError,
        match=r"seed.md:\d+: code block for step 3 tool call "
        r"output opened at line \d+ is never closed",
    ):
        import_markdown(cut, source="seed.md")


def test_truncated_at_a_step_boundary_still_imports(seed_md):
    text = seed_md.read_text()
    cut = text[: text.index("### Step 6")]
    events = import_markdown(cut, source="seed.md")
    log = RunLog.from_events(events)
    assert log.step_numbers == [1, 2, 3, 4, 5]
    assert log.grade.submitted is False
