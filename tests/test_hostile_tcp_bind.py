"""A ``tcp`` PCM source on a non-loopback address agrees with the server's rule (issue 21):
producers send no token, so listening beyond loopback needs an explicit ``allow_remote``."""

from __future__ import annotations

import logging

import pytest

from daemon.config import ConfigError, config_from_dict
from daemon.harness import free_port
from daemon.sources.pcm import PcmSource
from tests.test_hostile_cli import assert_one_line_error, genred


def _tcp_source(host: str, **extra: object) -> dict:
    return {"name": "pcm", "kind": "tcp", "host": host, "port": 4713, "sample_rate_hz": 44100,
            **extra}


@pytest.mark.parametrize("host", ["0.0.0.0", "", "127.attacker.example"])
def test_a_tcp_source_beyond_loopback_is_refused_without_allow_remote(tmp_path, host):
    with pytest.raises(ConfigError, match=r"sources\[0\]\.host: .*allow_remote"):
        config_from_dict({"sources": [_tcp_source(host)]})
    config = tmp_path / "config.yaml"
    config.write_text(f"sources: [{{name: pcm, kind: tcp, host: '{host}', port: 4713, "
                      f"sample_rate_hz: 44100}}]\n")
    assert_one_line_error(genred("run", "--config", str(config)), "allow_remote")


def test_allow_remote_loads():
    config = config_from_dict({"sources": [_tcp_source("0.0.0.0", allow_remote=True)]})
    assert config.sources[0].allow_remote
    assert config_from_dict({"sources": [_tcp_source("127.0.0.1")]}).sources[0].host


async def test_a_remote_listener_logs_that_producers_are_not_authenticated(caplog):
    source = PcmSource("pcm", "tcp", 44100, host="0.0.0.0", port=free_port("0.0.0.0"))
    with caplog.at_level(logging.WARNING):
        await source.start()
        await source.close()
    assert "not authenticated" in caplog.text
