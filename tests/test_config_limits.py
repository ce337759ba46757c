"""config.py's range checks at their exact boundaries: the last good value passes, the first bad
one is refused with the whole message (key path, rule and the value as given) (issue 25)."""

from __future__ import annotations

import pytest

from daemon.config import config_from_dict
from daemon.schema import ConfigError

LIMITS = [  # (section, key, last good value, first bad value, rule)
    ("server", "port", 65535, 65536, "must be in 0..65535"),
    ("server", "port", 0, -1, "must be in 0..65535"),
    ("server", "client_queue_size", 1, 0, "must be >= 1"),
    ("server", "max_message_bytes", 64, 63, "must be >= 64"),
    ("server", "max_clients", 1, 0, "must be in 1..1000000"),
    ("server", "max_clients", 1_000_000, 1_000_001, "must be in 1..1000000"),
    ("window", "hop_seconds", 0.1, 0.09, "must be in [0.1, 30]"),
    ("window", "hop_seconds", 30, 30.5, "must be in [0.1, 30]"),
    ("window", "silence_rms_dbfs", -120, -121.0, "must be in [-120, 0]"),
    ("window", "silence_rms_dbfs", 0, 0.5, "must be in [-120, 0]"),
    ("inference", "max_batch_size", 1, 0, "must be in 1..256"),
    ("inference", "max_batch_size", 256, 257, "must be in 1..256"),
    ("inference", "num_threads", 1, 0, "must be in 1..256 or null"),
    ("inference", "num_threads", 256, 257, "must be in 1..256 or null"),
]


@pytest.mark.parametrize(("section", "key", "good", "bad", "rule"), LIMITS)
def test_each_limit_at_its_boundary(section: str, key: str, good: float, bad: float,
                                    rule: str) -> None:
    config = config_from_dict({section: {key: good}})
    assert getattr(getattr(config, section), key) == good
    with pytest.raises(ConfigError) as error:
        config_from_dict({section: {key: bad}})
    assert str(error.value) == f"{section}.{key}: {rule}, got {bad!r}"


def test_runtime_and_precision_name_their_choices() -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict({"inference": {"runtime": "onnx"}})
    assert str(error.value) == ("inference.runtime: must be one of ['auto', 'keras', 'tflite', "
                                "'openvino'], got 'onnx'")
    with pytest.raises(ConfigError) as error:
        config_from_dict({"inference": {"precision": "int4"}})
    assert str(error.value) == ("inference.precision: must be one of ['auto', 'float32', "
                                "'bfloat16', 'float16'], got 'int4'")
    with pytest.raises(ConfigError) as error:
        config_from_dict({"inference": {"runtime": "tflite", "precision": "bfloat16"}})
    assert str(error.value).startswith("inference.precision: is for runtime keras")
    assert config_from_dict({"inference": {"runtime": "tflite", "precision": "auto"}}) \
        .inference.precision == "auto"  # auto means float32 there: allowed
    assert config_from_dict({"inference": {"num_threads": None}}).inference.num_threads is None


def test_token_rules_name_the_key_and_never_the_token() -> None:
    for token in (" ", " hunter2", "hunter2 "):
        with pytest.raises(ConfigError) as error:
            config_from_dict({"server": {"token": token}})
        assert str(error.value) == ("server.token: must not be blank or start/end with "
                                    "whitespace, got '<redacted>'")
    with pytest.raises(ConfigError) as error:
        config_from_dict({"server": {"host": "0.0.0.0"}})
    assert str(error.value) == (
        "server.token: is required when binding to non-loopback address '0.0.0.0' (set "
        "server.token or the GENRED_TOKEN environment variable), got None")
    assert config_from_dict({"server": {"host": "0.0.0.0", "token": "t0k"}}).server.token \
        == "t0k"


def test_duplicate_source_names_are_listed_once_each() -> None:
    source = {"kind": "url", "url": "http://radio.example/s"}
    sources = [{**source, "name": n} for n in ("b", "a", "b", "a", "c")]
    with pytest.raises(ConfigError) as error:
        config_from_dict({"sources": sources})
    assert str(error.value) == "sources: names must be unique, got ['a', 'b']"
    assert [s.name for s in config_from_dict({"sources": sources[2:]}).sources] == ["b", "a", "c"]
