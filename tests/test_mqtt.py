"""daemon/mqtt.py against a real mosquitto broker (Debian package) on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from daemon.config import ConfigError, config_from_dict
from daemon.harness import free_port, stop_process
from daemon.messages import Prediction
from daemon.mqtt import MqttConfig, MqttPublisher, connect_options, redact_url
from daemon.sources.base import BackoffPolicy
from tests.conftest import REPO_ROOT
from tests.mqtt_helpers import Broker, collect, make_tls_files

FAST_BACKOFF = BackoffPolicy(initial_seconds=0.1, max_seconds=0.5)


def prediction(source: str, genre: str, confidence: float = 0.7) -> Prediction:
    return Prediction(source=source, window_start_ms=0, window_end_ms=30000,
                      wall_time=time.time(), genre=genre, confidence=confidence,
                      probabilities={"rock": confidence, "jazz": round(1 - confidence, 4)},
                      raw_probabilities={"rock": 0.5, "jazz": 0.5}, model="fake")


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path).start()
    yield broker
    broker.stop()


@contextlib.asynccontextmanager
async def running(url: str, sources=("radio",), **config):
    publisher = MqttPublisher(MqttConfig(url=url, backoff=FAST_BACKOFF, **config),
                              sources=sources, model_name="fake", sw_version="0.1.0")
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        publisher.stop()
        await asyncio.wait_for(task, 10)


async def wait_for(predicate, timeout_seconds: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_seconds)


async def test_discovery_state_and_change_reach_a_subscriber(broker):
    async with running(broker.url, sources=("radio", "kitchen/left")) as publisher:
        await wait_for(lambda: publisher.connected)
        publisher.publish_prediction(prediction("radio", "rock"), changed=True)
        publisher.publish_prediction(prediction("radio", "jazz", 0.4), changed=True)
        await wait_for(lambda: publisher.messages_published >= 7
                       and publisher.health()["messages_queued"] == 0)
        # a subscriber that connects later still gets every retained message
        seen = await collect(broker.port, ["homeassistant/#", "genred/#"], lambda s: all(
            t in s for t in ("homeassistant/sensor/genred_radio/config",
                             "homeassistant/sensor/genred_kitchen_left/config",
                             "genred/radio/state", "genred/availability")))
    config, retained = seen["homeassistant/sensor/genred_radio/config"][0]
    assert retained
    assert config["state_topic"] == config["json_attributes_topic"] == "genred/radio/state"
    assert config["unique_id"] == "genred_radio" and config["value_template"]
    assert config["availability"] == [{"topic": "genred/availability"},
                                      {"topic": "genred/radio/availability"}]
    assert config["device"]["identifiers"] == ["genred_radio"]
    state, retained = seen["genred/radio/state"][-1]
    assert retained and state["genre"] == "jazz" and state["confidence"] == 0.4
    assert state["probabilities"] == {"rock": 0.4, "jazz": 0.6}
    assert seen["genred/availability"][-1] == ("online", True)
    assert "genred/radio/change" not in seen  # change events are not retained
    assert publisher.health()["state"] == "disconnected"


async def test_live_subscriber_sees_changes_and_offline_on_stop(broker):
    subscribed = asyncio.Event()
    listener = asyncio.create_task(collect(
        broker.port, ["genred/#"], lambda s: ("offline", True) in s.get("genred/availability",
                                                                        [])
        or ("offline", False) in s.get("genred/availability", []), subscribed=subscribed))
    await asyncio.wait_for(subscribed.wait(), 15)
    async with running(broker.url) as publisher:
        await wait_for(lambda: publisher.connected)
        publisher.publish_prediction(prediction("radio", "rock"), changed=True)
        publisher.publish_prediction(prediction("radio", "rock"), changed=False)  # not due
        publisher.publish_prediction(prediction("radio", "jazz", 0.4), changed=True)
        await wait_for(lambda: publisher.health()["messages_queued"] == 0)
    seen = await asyncio.wait_for(listener, 15)
    changes = [p for p, _ in seen["genred/radio/change"]]
    assert [(c["genre"], c["previous"]) for c in changes] == [("rock", None), ("jazz", "rock")]
    assert [p["genre"] for p, _ in seen["genred/radio/state"]] == ["rock", "jazz"]


async def test_reconnects_after_the_broker_restarts(broker):
    async with running(broker.url) as publisher:
        await wait_for(lambda: publisher.connected)
        publisher.publish_prediction(prediction("radio", "rock"), changed=True)
        await wait_for(lambda: publisher.messages_published >= 3)
        broker.stop()
        await wait_for(lambda: not publisher.connected)
        assert publisher.health()["error"]
        publisher.publish_prediction(prediction("radio", "jazz", 0.4), changed=True)
        broker.start()  # same port, no persistence: the retained messages are gone
        await wait_for(lambda: publisher.connected and publisher.connects == 2, 15)
        seen = await collect(broker.port, ["#"], lambda s: "genred/radio/state" in s and
                             "homeassistant/sensor/genred_radio/config" in s)
    assert seen["genred/radio/state"][-1][0]["genre"] == "jazz"


async def test_publish_never_blocks_with_the_broker_down():
    url = f"mqtt://127.0.0.1:{free_port()}"
    async with running(url, queue_size=16) as publisher:
        started = time.monotonic()
        for i in range(2000):
            publisher.publish_prediction(prediction("radio", "rock" if i % 2 else "jazz"),
                                         changed=True)
        assert time.monotonic() - started < 1.0
        await wait_for(lambda: publisher.error is not None)
        assert not publisher.connected
        health = publisher.health()
        assert health["messages_queued"] == 16 and health["messages_dropped"] > 3900


async def test_credentials_from_the_environment_are_not_logged(tmp_path, monkeypatch, caplog):
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "genred", "s3cret-pw"],
                   check=True, timeout=30)
    passwords.chmod(0o600)
    broker = Broker(tmp_path, f"allow_anonymous false\npassword_file {passwords}").start()
    caplog.set_level(logging.DEBUG)
    try:
        async with running(broker.url) as publisher:  # no credentials: refused
            await wait_for(lambda: publisher.error is not None)
            assert not publisher.connected
        monkeypatch.setenv("GENRED_MQTT_USERNAME", "genred")
        monkeypatch.setenv("GENRED_MQTT_PASSWORD", "s3cret-pw")
        async with running(broker.url) as publisher:
            await wait_for(lambda: publisher.connected)
        async with running(f"mqtt://genred:s3cret-pw@127.0.0.1:{broker.port}") as publisher:
            await wait_for(lambda: publisher.connected)
            assert "s3cret-pw" not in str(publisher.health())
    finally:
        broker.stop()
    assert "s3cret-pw" not in caplog.text


async def test_tls_with_a_ca_file_and_a_broken_one(tmp_path):
    cert, key, ca = make_tls_files(tmp_path)
    broker = Broker(tmp_path, f"allow_anonymous true\ncertfile {cert}\nkeyfile {key}").start()
    url = f"mqtts://127.0.0.1:{broker.port}"
    try:
        async with running(url, tls_ca_file=str(ca)) as publisher:
            await wait_for(lambda: publisher.connected)
            publisher.publish_prediction(prediction("radio", "rock"), changed=True)
            await wait_for(lambda: publisher.health()["messages_queued"] == 0)
        async with running(url) as publisher:  # the system CAs do not know this certificate
            await wait_for(lambda: publisher.error is not None)
            assert "CERTIFICATE_VERIFY_FAILED" in publisher.error and not publisher.connected
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("not a certificate")
        async with running(url, tls_ca_file=str(garbage)) as publisher:  # never raises
            await wait_for(lambda: publisher.error is not None)
            assert publisher.error.startswith("SSLError")
    finally:
        broker.stop()


LWT_SCRIPT = """
import asyncio, sys
from daemon.mqtt import MqttConfig, MqttPublisher
async def main():
    publisher = MqttPublisher(MqttConfig(url=sys.argv[1]), sources=["radio"], model_name="m")
    task = asyncio.create_task(publisher.run())
    while not publisher.messages_published:
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await task
asyncio.run(main())
"""


async def test_last_will_says_offline_when_the_daemon_is_killed(broker):
    process = subprocess.Popen([sys.executable, "-c", LWT_SCRIPT, broker.url],
                               stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert line.strip() == "ready"
        subscribed = asyncio.Event()
        listener = asyncio.create_task(collect(
            broker.port, ["genred/availability"],
            lambda s: s["genred/availability"][-1][0] == "offline", subscribed=subscribed))
        await asyncio.wait_for(subscribed.wait(), 15)
        process.kill()
        seen = await asyncio.wait_for(listener, 15)
    finally:
        stop_process(process)
    assert [p for p, _ in seen["genred/availability"]] == ["online", "offline"]


def test_config_checks_and_options(monkeypatch):
    config = config_from_dict({"mqtt": {"url": "mqtts://u:p%40ss@broker.lan"}})
    monkeypatch.setenv("GENRED_MQTT_PASSWORD", "from-env")
    options = connect_options(config.mqtt)
    assert (options["hostname"], options["port"]) == ("broker.lan", 8883)
    assert (options["username"], options["password"]) == ("u", "p@ss")
    assert options["tls_context"] is not None
    options = connect_options(MqttConfig(url="mqtt://broker.lan"))
    assert (options["port"], options["password"], options["tls_context"]) == (
        1883, "from-env", None)
    assert redact_url("mqtt://u:secret@h:1883") == "mqtt://***@h:1883"
    assert config_from_dict({}).mqtt.url is None
    for bad, match in (({"url": "http://h"}, r"mqtt\.url: must look like"),
                       ({"url": "mqtt://u:secret@h:99999"}, r"mqtt\.url: has an invalid port"),
                       ({"topic_prefix": "a/#"}, r"mqtt\.topic_prefix"),
                       ({"state_interval_seconds": 0}, r"mqtt\.state_interval_seconds"),
                       ({"tls_ca_file": "/nonexistent.pem"}, r"mqtt\.tls_ca_file")):
        with pytest.raises(ConfigError, match=match) as info:
            config_from_dict({"mqtt": bad})
        assert "secret" not in str(info.value)


def test_run_flag_sets_the_broker_url(tmp_path):
    from daemon.cli import build_parser, resolve_config

    config_path = tmp_path / "config.yaml"
    config_path.write_text("mqtt: {topic_prefix: house/genred}\n")
    args = build_parser().parse_args(["run", "--config", str(config_path),
                                      "--mqtt", "mqtt://broker.lan:1884"])
    config = resolve_config(args)
    assert config.mqtt.url == "mqtt://broker.lan:1884"
    assert config.mqtt.topic_prefix == "house/genred"
    args = build_parser().parse_args(["run", "--config", str(config_path), "--mqtt", "ftp://x"])
    with pytest.raises(ConfigError, match=r"mqtt\.url"):
        resolve_config(args)


def test_source_names_sharing_a_topic_are_refused_with_mqtt_only(tmp_path):
    from daemon.cli import build_parser, resolve_config

    sources = [{"name": name, "kind": "url", "url": "http://radio.lan/x"}
               for name in ("kitchen radio", "kitchen_radio")]
    assert len(config_from_dict({"sources": sources}).sources) == 2  # no MQTT: no clash
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps({"sources": sources, "mqtt": {"topic_prefix": "h/g"}}))
    args = build_parser().parse_args(["run", "--config", str(config_path),
                                      "--mqtt", "mqtt://broker.lan"])
    with pytest.raises(ConfigError, match=r"^sources: names 'kitchen radio' and "
                       r"'kitchen_radio' would share the MQTT topic h/g/kitchen_radio/state "
                       r"and Home Assistant unique_id genred_kitchen_radio; rename one"):
        resolve_config(args)
