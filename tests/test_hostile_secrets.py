"""Secrets a hostile config can hide from redaction (issue 21): a url source's password with an
unencoded ``@`` (F2), a token-as-username MQTT broker URL (F7); what /healthz shows."""

from __future__ import annotations

import asyncio
import json

import pytest

from daemon.harness import free_port, http_get
from daemon.mqtt import redact_url
from daemon.redact import redact
from tests.mqtt_helpers import Broker
from tests.real_helpers import daemon_process, write_config
from tests.test_hostile_daemon import read_messages

pytestmark = pytest.mark.timeout(120)
SECRET_TAIL = "ssSECRET"
MQTT_TOKEN = "tok3n-SECRET"


async def test_a_password_with_an_unencoded_at_is_redacted_as_ffmpeg_parses_it(tmp_path):
    """ffmpeg takes the last ``@`` as the end of the user info: so does redaction (F2)."""
    port, closed_port = free_port(), free_port()
    url = f"http://bob:pa@{SECRET_TAIL}@127.0.0.1:{closed_port}/stream"
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "radio", "kind": "url", "url": url,
         "backoff": {"initial_seconds": 0.2, "max_seconds": 0.5}}])
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        messages = await read_messages(
            f"ws://127.0.0.1:{port}/", lambda m: m.get("state") == "reconnecting"
            and "Connection refused" in (m.get("message") or ""), 30)
        health = await asyncio.to_thread(http_get, port, "/healthz")
    shown = {"status events": json.dumps(messages), "/healthz": health, "log": daemon.log()}
    assert "Connection refused" in shown["log"]  # ffmpeg did connect to 127.0.0.1 (last @)
    for where, text in shown.items():
        assert SECRET_TAIL not in text and "pa@" not in text, f"{where}: {text[-2000:]}"


async def test_an_mqtt_token_as_username_is_shown_nowhere(tmp_path):
    """``mqtt://TOKEN@host``: no credential of any kind in /healthz, events or the log (F7)."""
    broker = Broker(tmp_path).start()
    port = free_port()
    try:
        config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
            {"name": "radio", "kind": "url", "url": f"http://127.0.0.1:{free_port()}/",
             "backoff": {"initial_seconds": 0.2, "max_seconds": 0.5}}],
            mqtt={"url": f"mqtt://{MQTT_TOKEN}@127.0.0.1:{broker.port}"})
        with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
            await daemon.wait_ready(port, 60)
            messages = await read_messages(
                f"ws://127.0.0.1:{port}/", lambda m: m.get("state") == "reconnecting", 30)
            health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
            for _ in range(50):  # connected: the URL the section shows is the one in use
                if health["mqtt"]["state"] == "connected":
                    break
                await asyncio.sleep(0.2)
                health = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
    finally:
        broker.stop()
    assert health["mqtt"]["state"] == "connected", health
    assert health["mqtt"]["url"] == f"mqtt://***@127.0.0.1:{broker.port}"
    shown = {"status events": json.dumps(messages), "/healthz": json.dumps(health),
             "log": daemon.log()}
    for where, text in shown.items():
        assert MQTT_TOKEN not in text, f"{where}: {text[-2000:]}"


@pytest.mark.parametrize(("text", "shown"), [
    ("http://bob:pa@ssX@h:1/x", "http://***@h:1/x"),
    ("rtsp://u:a@b@c@10.0.0.1:554/s?x=1", "rtsp://***@10.0.0.1:554/s?x=1"),
    ("failed: http://u:p@q@h/x and http://v:w@h2/y", "failed: http://***@h/x and http://***@h2/y"),
    ("http://h/path@x", "http://h/path@x"),
    ("mqtt://tok@h:1883", "mqtt://***@h:1883"),
])
def test_redact_takes_the_last_at_of_the_authority(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize("url", ["mqtt://tok@h:1883", "mqtt://u:p@ss@h", "mqtts://u:secret@h"])
def test_mqtt_urls_show_no_user_info(url):
    assert redact_url(url).startswith(("mqtt://***@h", "mqtts://***@h")), redact_url(url)


def test_a_url_whose_user_info_has_whitespace_is_refused_with_a_hint():
    from daemon.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"sources\[0\]\.url: .*percent-encode") as info:
        config_from_dict({"sources": [{"name": "r", "kind": "url",
                                       "url": "http://bob:pa ss@wo rd@h/x"}]})
    assert "pa ss" not in str(info.value) and "\n" not in str(info.value)


async def test_healthz_without_the_token_shows_states_but_no_paths_errors_or_urls(tmp_path):
    """With a token set, an unauthenticated /healthz is for liveness checks only (issue 21)."""
    port, closed_port = free_port(), free_port()
    history = tmp_path / "private-history.sqlite3"
    config = write_config(tmp_path / "config.yaml", tmp_path / "unused-model", port, [
        {"name": "radio", "kind": "url", "url": f"http://127.0.0.1:{closed_port}/private",
         "backoff": {"initial_seconds": 0.2, "max_seconds": 0.5}}],
        server={"token": "t0ken-for-healthz"}, history={"path": str(history)})
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port, 60)
        full: dict = {}
        for _ in range(100):
            full = json.loads(await asyncio.to_thread(
                http_get, port, "/healthz?token=t0ken-for-healthz"))
            if "Connection refused" in (full["sources"][0]["message"] or ""):
                break
            await asyncio.sleep(0.1)
        public = json.loads(await asyncio.to_thread(http_get, port, "/healthz"))
    assert full["history"]["path"] == str(history) and "/private" in json.dumps(full)
    assert public["status"] == "ok" and public["model"] == full["model"]
    assert [(s["name"], s["state"]) for s in public["sources"]] == [("radio", "reconnecting")]
    text = json.dumps(public)
    for hidden in (str(history), "private", "Connection refused", str(closed_port)):
        assert hidden not in text, (hidden, text)
    assert public["history"] == {"state": full["history"]["state"]}
