"""config.yaml loading: defaults, key-path errors, token rule, path resolution."""

from __future__ import annotations

import pytest

from daemon.config import Config, ConfigError, config_from_dict, load_config
from tests.conftest import REPO_ROOT


def test_shipped_config_loads():
    config = load_config(REPO_ROOT / "config.yaml")
    assert isinstance(config, Config)
    assert config.server.host == "127.0.0.1" and config.server.port == 8765
    assert config.window.hop_seconds == 2.0
    assert config.model.endswith("models/genred-default")
    assert [s.kind for s in config.sources] == ["device"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"smoothing": {"alpha": 3}}, r"smoothing\.alpha: must be in \(0, 1\], got 3"),
        ({"smoothing": {"alpah": 0.3}}, r"smoothing\.alpah: unknown key"),
        ({"server": {"port": "8765"}}, r"server\.port: expected int, got '8765'"),
        ({"server": {"port": 70000}}, r"server\.port: must be in 0\.\.65535"),
        ({"window": {"hop_seconds": True}}, r"window\.hop_seconds: expected float"),
        ({"sources": [{"name": "a", "kind": "radio"}]}, r"sources\[0\]\.kind: must be one of"),
        ({"sources": [{"name": "a", "kind": "url", "url": "gopher://x"}]},
         r"sources\[0\]\.url: unknown URL scheme"),
        ({"sources": [{"name": "a", "kind": "url", "url": "/no/such/file.mp3"}]},
         r"sources\[0\]\.url: file not found"),
        ({"sources": [{"kind": "url"}]}, r"sources\[0\]\.name: is required"),
        ({"sources": [{"name": "a", "kind": "stdin"}]}, r"sources\[0\]\.sample_rate_hz"),
        ({"sources": [{"name": "a", "kind": "device"}, {"name": "a", "kind": "device"}]},
         r"sources: names must be unique"),
        ({"smoothing": {"method": "median"}}, r"smoothing\.method: must be one of"),
        ({"sources": {"name": "a"}}, r"sources: must be a list"),
        ({"log_level": "loud"}, r"log_level: must be one of"),
    ],
)
def test_errors_name_the_key_path(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_int_accepted_where_float_expected():
    assert config_from_dict({"smoothing": {"alpha": 1}}).smoothing.alpha == 1.0


def test_non_loopback_needs_token(monkeypatch):
    monkeypatch.delenv("GENRED_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="server.token: is required"):
        config_from_dict({"server": {"host": "0.0.0.0"}})
    assert config_from_dict({"server": {"host": "0.0.0.0", "token": "s3cret"}}).server.token
    monkeypatch.setenv("GENRED_TOKEN", "from-env")
    assert config_from_dict({"server": {"host": "0.0.0.0"}}).server.token == "from-env"


def test_relative_paths_resolve_against_config_dir(tmp_path):
    clip = tmp_path / "clip.ogg"
    clip.write_bytes(b"x")
    (tmp_path / "c.yaml").write_text(
        "model: mymodel\nsources:\n  - {name: a, kind: url, url: clip.ogg}\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.model == str(tmp_path / "mymodel")
    assert config.sources[0].url == str(clip)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="config: must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_config_is_frozen():
    config = config_from_dict({})
    with pytest.raises(AttributeError):
        config.model = "x"  # type: ignore[misc]
