"""The JSON protocol: round trips and validation error codes."""

from __future__ import annotations

import json

import pytest

from daemon.messages import (
    CLIENT_TYPES,
    ERROR_CODES,
    PROTOCOL_VERSION,
    Error,
    Hello,
    Message,
    Prediction,
    ProtocolError,
    SourceInfo,
    SourceState,
    Status,
    Subscribe,
    from_json,
)

PROBS = {"rock": 0.7, "jazz": 0.2, "pop": 0.1}
SAMPLES: list[Message] = [
    Hello(protocol_version=PROTOCOL_VERSION, model="vgg16-bfft", labels=("rock", "jazz", "pop"),
          sources=(SourceInfo("mic", "device", "live", None),
                   SourceInfo("radio", "url", "reconnecting", "HTTP 503")),
          server_time=1700000000.25),
    Prediction(source="mic", window_start_ms=0, window_end_ms=3000, wall_time=1700000001.5,
               genre="rock", confidence=0.7, probabilities=PROBS,
               raw_probabilities={"rock": 0.9, "jazz": 0.05, "pop": 0.05}, model="vgg16-bfft"),
    Status(source="radio", state="reconnecting", message="retry in 2 s", wall_time=1.0),
    Status(source="mic", state="live", message=None, wall_time=2.0),
    Error(code="bad_json", message="invalid JSON"),
    Subscribe(sources=("mic", "radio")),
    Subscribe(sources=None),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    text = message.to_json()
    assert json.loads(text)["type"] == message.TYPE
    assert from_json(text) == message
    assert from_json(text.encode()) == message


def test_lists_are_normalized_to_tuples() -> None:
    hello = Hello(protocol_version=1, model="m", labels=["a"], sources=[], server_time=0.0)
    assert hello.labels == ("a",) and hello.sources == ()
    assert Subscribe(sources=["x"]).sources == ("x",)


def test_integer_numbers_are_accepted_as_floats() -> None:
    status = from_json('{"type":"status","source":"s","state":"live","message":null,'
                       '"wall_time":5}')
    assert isinstance(status, Status) and status.wall_time == 5.0
    assert isinstance(status.wall_time, float)


def test_wire_field_names() -> None:
    obj = json.loads(SAMPLES[1].to_json())
    assert set(obj) == {"type", "source", "window_start_ms", "window_end_ms", "wall_time",
                        "genre", "confidence", "probabilities", "raw_probabilities", "model"}
    hello = json.loads(SAMPLES[0].to_json())
    assert hello["sources"][1] == {"name": "radio", "kind": "url", "state": "reconnecting",
                                   "message": "HTTP 503"}


def _prediction_with(**changes: object) -> str:
    obj = json.loads(SAMPLES[1].to_json())
    obj.update(changes)
    return json.dumps(obj)


@pytest.mark.parametrize(("text", "code"), [
    ("{not json", "bad_json"),
    ("", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('"hello"', "bad_json"),
    ('{"type": "status", "source": "s", "state": "live", "message": null, "wall_time": NaN}',
     "bad_json"),
    ("[" * 100000 + "]" * 100000, "bad_json"),
    ('{"source": "s"}', "bad_field"),
    ('{"type": 3}', "bad_field"),
    ('{"type": "launch_missiles"}', "unknown_type"),
    ('{"type": "subscribe"}', "bad_field"),
    ('{"type": "subscribe", "sources": "mic"}', "bad_field"),
    ('{"type": "subscribe", "sources": ["mic", 3]}', "bad_field"),
    ('{"type": "status", "source": "s", "state": "dancing", "message": null, "wall_time": 1}',
     "bad_field"),
    ('{"type": "status", "source": "s", "state": "live", "message": 5, "wall_time": 1}',
     "bad_field"),
    ('{"type": "error", "code": "x"}', "bad_field"),
    ('{"type": "hello", "protocol_version": 1, "model": "m", "labels": [], '
     '"sources": [{"name": "a", "kind": "url"}], "server_time": 1}', "bad_field"),
    (_prediction_with(window_start_ms=1.5), "bad_field"),
    (_prediction_with(window_end_ms=True), "bad_field"),
    (_prediction_with(confidence="high"), "bad_field"),
    (_prediction_with(probabilities=[0.1, 0.9]), "bad_field"),
    (_prediction_with(raw_probabilities={"rock": "x"}), "bad_field"),
    (_prediction_with(genre=None), "bad_field"),
])
def test_from_json_errors(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        from_json(text)
    assert info.value.code == code
    assert info.value.code in ERROR_CODES
    assert info.value.message


@pytest.mark.parametrize("text", ['{"type": "hello"}', '{"type": "prediction", "x": 1}',
                                  SAMPLES[0].to_json()])
def test_server_types_from_a_client_are_unknown_types(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        from_json(text, CLIENT_TYPES)
    assert info.value.code == "unknown_type" and "only 'subscribe'" in info.value.message


def test_missing_field_is_named() -> None:
    obj = json.loads(SAMPLES[1].to_json())
    del obj["window_end_ms"]
    with pytest.raises(ProtocolError, match="window_end_ms"):
        from_json(json.dumps(obj))


def test_non_finite_numbers_are_not_serialized() -> None:
    bad = Status(source="s", state="live", message=None, wall_time=float("nan"))
    with pytest.raises(ValueError):
        bad.to_json()


def test_source_states() -> None:
    assert tuple(SourceState) == ("connecting", "warming_up", "live", "silent", "no_music",
                                  "reconnecting", "ended", "error")
