from __future__ import annotations

import pytest

from agentdeck.engine.events import (
    EVENT_TYPES,
    SCHEMA,
    EventError,
    Metric,
    ModelDelta,
    ModelResponse,
    RunStart,
    StepStart,
    event_from_dict,
)
from agentdeck.engine.log import encode_event


def _min(etype: str) -> dict:
    base = {"seq": 0, "t": 1.5, "type": etype}
    required = {
        "run_start": {"run_id": "r", "task": "t", "agent": "a", "max_steps": 3, "prompt": "p"},
        "step_start": {"step": 1},
        "model_delta": {"step": 1, "block_index": 1, "text": "x"},
        "model_response": {"step": 1, "message_id": "m", "stop_reason": "end_turn", "content": []},
        "tool_call": {"step": 1, "call_id": "c", "name": "n", "input": {}, "block_index": 1},
        "tool_output_chunk": {"call_id": "c", "stream": "stdout", "text": "x"},
        "tool_result": {"step": 1, "call_id": "c"},
        "metric": {"name": "loss", "value": 0.5},
        "artifact": {"name": "a", "path": "artifacts/a"},
        "grade": {"passed": True},
        "warning": {"where": "w", "message": "m"},
        "error": {"where": "w", "message": "m"},
        "run_end": {"status": "completed"},
        "file_change": {"path": "main.py", "op": "create"},
    }[etype]
    return {**base, **required}


@pytest.mark.parametrize("etype", sorted(EVENT_TYPES))
def test_every_type_round_trips(etype):
    ev = event_from_dict(_min(etype))
    assert etype == ev.TYPE
    again = event_from_dict(ev.to_dict())
    assert again == ev


def test_to_dict_starts_with_seq_t_type_and_step():
    d = StepStart(seq=4, t=2.0, step=7).to_dict()
    assert list(d)[:4] == ["seq", "t", "type", "step"]
    assert encode_event(StepStart(seq=4, t=2.0, step=7)).startswith(
        '{"seq":4,"t":2.0,"type":"step_start","step":7'
    )


@pytest.mark.parametrize(
    ("mutate", "field", "expect"),
    [
        (lambda d: d.pop("step"), "step", "missing; expected an integer"),
        (lambda d: d.update(step="1"), "step", "expected an integer, got a string"),
        (lambda d: d.update(step=True), "step", "expected an integer, got a boolean"),
        (lambda d: d.update(bogus=1), None, "unknown field(s) 'bogus'"),
        (lambda d: d.update(seq=-1), "seq", "non-negative integer"),
        (lambda d: d.pop("t"), "t", "unix seconds"),
    ],
)
def test_validation_names_field_and_expectation(mutate, field, expect):
    d = _min("step_start")
    mutate(d)
    with pytest.raises(EventError) as ei:
        event_from_dict(d)
    assert ei.value.field == field
    assert expect in str(ei.value)


def test_unknown_type_lists_known_types():
    with pytest.raises(EventError, match=r"unknown event type 'nope'.*run_start"):
        event_from_dict({"seq": 0, "t": 0, "type": "nope"})


def test_not_an_object():
    with pytest.raises(EventError, match="expected a JSON object, got a list"):
        event_from_dict([1, 2])


def test_extension_fields_are_allowed():
    d = _min("metric")
    d["x_note"] = "tool-specific"
    assert event_from_dict(d).name == "loss"


def test_schema_version_checked():
    d = _min("run_start")
    d["schema"] = "agentdeck.log/2"
    with pytest.raises(EventError, match=r"not supported.*upgrade agentdeck"):
        event_from_dict(d)
    d["schema"] = "something/1"
    with pytest.raises(EventError, match="not an agentdeck log schema"):
        event_from_dict(d)
    assert RunStart(run_id="r", task="t", agent="a", max_steps=1, prompt="p").schema == SCHEMA


def test_usage_keys_and_content_blocks_checked():
    d = _min("model_response")
    d["usage"] = {"input_tokens": 1, "bogus_tokens": 2}
    with pytest.raises(EventError, match="unknown usage key 'bogus_tokens'"):
        event_from_dict(d)
    d = _min("model_response")
    d["content"] = ["just a string"]
    with pytest.raises(EventError, match=r"content\[0\]"):
        event_from_dict(d)


def test_error_located_reads_like_a_compiler_message():
    e = EventError("expected an integer, got a string", field="step", type="step_start")
    assert str(e.located(line=17, source="run.jsonl")) == (
        "run.jsonl:17: step_start.step: expected an integer, got a string"
    )


def test_live_only_events_are_not_persistent():
    assert not ModelDelta.PERSIST
    assert ModelResponse.PERSIST and Metric.PERSIST


def test_nan_is_written_as_null():
    line = encode_event(Metric(seq=0, t=1.0, name="loss", value=float("nan")))
    assert '"value":null' in line
