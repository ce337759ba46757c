"""The wired outputs: a real file source through the service into SQLite history (GET
/history, /healthz) and a real mosquitto broker (Home Assistant discovery, state)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error

import numpy as np
import scipy.io.wavfile
import websockets
import yaml

from daemon.harness import DaemonProcess, free_port, http_get, metric
from daemon.history_query import query
from tests.daemon_helpers import write_tone_wav
from tests.mqtt_helpers import Broker, collect
from tests.real_helpers import daemon_process
from tests.test_service import make_config, running


async def get_json(port: int, path: str) -> tuple[int, object]:
    """GET path -> (status, parsed JSON body), 4xx/5xx included."""
    try:
        text = await asyncio.wait_for(asyncio.to_thread(http_get, port, path), 15)
        return 200, json.loads(text)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def wait_for_rows(port: int, path: str, timeout_seconds: float = 40.0) -> list[dict]:
    deadline = time.monotonic() + timeout_seconds
    while True:
        status, rows = await get_json(port, path)
        assert status == 200, rows
        if rows:
            return rows
        assert time.monotonic() < deadline, "no history rows in time"
        await asyncio.sleep(0.2)


async def test_predictions_reach_history_and_mqtt(tmp_path):
    wav = write_tone_wav(tmp_path / "tone.wav", 9000, 40.0)
    broker = Broker(tmp_path).start()
    db = tmp_path / "history.sqlite3"
    config = make_config([{"name": "tone 1", "kind": "url", "url": str(wav), "realtime": False}],
                         history={"path": str(db), "commit_interval_seconds": 0.2},
                         mqtt={"url": broker.url, "state_interval_seconds": 0.5})
    try:
        listener = asyncio.create_task(collect(broker.port, ["#"], lambda s: any(
            p["genre"] == "high" for p, _ in s.get("genred/tone_1/state", []))
            and "homeassistant/sensor/genred_tone_1/config" in s, 60))
        async with running(config) as service:
            port = service.publisher.port
            rows = await wait_for_rows(port, "/history?source=tone+1&limit=5")
            seen = await asyncio.wait_for(listener, 60)
            status, error = await get_json(port, "/history?since=someday")
            assert status == 400 and "since: expected ISO 8601" in error["error"]
            _, health = await get_json(port, "/healthz")
            _, empty = await get_json(port, "/history?source=other")
            metrics = await asyncio.wait_for(asyncio.to_thread(http_get, port, "/metrics"), 15)
    finally:
        broker.stop()
    assert rows[-1]["source"] == "tone 1" and rows[-1]["genre"] == "high"
    assert rows[0]["changed"] is True and set(rows[0]["probabilities"]) == {"low", "mid", "high"}
    assert empty == []
    assert metric(metrics, "genred_history_rows_lost_total") == 0
    assert metric(metrics, "genred_mqtt_messages_dropped_total") == 0
    assert health["history"]["state"] == "ok" and health["history"]["path"] == str(db)
    assert health["mqtt"]["state"] == "connected" and health["mqtt"]["messages_published"] > 0
    discovery = seen["homeassistant/sensor/genred_tone_1/config"][-1][0]
    assert discovery["state_topic"] == "genred/tone_1/state"
    assert discovery["device"]["model"] == "fake"


async def test_unwritable_history_keeps_the_pipeline_running(tmp_path):
    wav = write_tone_wav(tmp_path / "tone.wav", 500, 35.0)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = make_config([{"name": "f", "kind": "url", "url": str(wav), "realtime": False}],
                         history={"path": str(blocker / "h.sqlite3"),
                                  "commit_interval_seconds": 0.1})
    async with running(config) as service:
        deadline = time.monotonic() + 40
        while service.health()["history"]["rows_failed"] < 1 or not any(
                s["windows_classified"] for s in service.health()["sources"]):
            assert time.monotonic() < deadline, service.health()
            await asyncio.sleep(0.2)
        _, health = await get_json(service.publisher.port, "/healthz")
        metrics = await asyncio.wait_for(
            asyncio.to_thread(http_get, service.publisher.port, "/metrics"), 15)
    assert metric(metrics, "genred_history_rows_lost_total") >= 1
    assert "genred_mqtt_messages_dropped" not in metrics
    assert health["history"]["state"] == "error" and health["mqtt"] == {"state": "disabled"}
    assert health["history"]["error"]


async def read_predictions(port: int, into: list[dict]) -> None:
    """Append every prediction a WebSocket client receives to ``into`` until cancelled."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
        async for text in ws:
            message = json.loads(text)
            if message["type"] == "prediction":
                into.append(message)


async def test_daemon_process_kill_9_keeps_all_but_the_last_second(tmp_path):
    """Subprocess daemon (fake model): kill -9 -> every prediction older than ~1 s is in the
    history, the MQTT last will says offline; a restart serves the old rows; SIGTERM exits 0."""
    wav = write_tone_wav(tmp_path / "tone.wav", 9000, 35.0)
    broker = Broker(tmp_path).start()
    port, db = free_port(), tmp_path / "h.sqlite3"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"port": port}, "window": {"hop_seconds": 0.5},
        "sources": [{"name": "f", "kind": "url", "url": str(wav), "loop": True,
                     "realtime": False}],
        "history": {"path": str(db)}, "mqtt": {"url": broker.url}}))
    daemon = DaemonProcess(config, tmp_path / "daemon.log", fake_model=True).start()
    seen: list[dict] = []
    try:
        await daemon.wait_ready(port, 60)
        mqtt = asyncio.create_task(collect(broker.port, ["genred/#", "homeassistant/#"],
                                           lambda s: "offline" in [p for p, _ in s.get(
                                               "genred/availability", [])], 90))
        reader = asyncio.create_task(read_predictions(port, seen))
        await wait_until_async(lambda: len(seen) >= 10
                               and time.time() - seen[0]["wall_time"] > 3.0, 60)
        daemon.process.kill()
        killed_at = time.time()
        daemon.process.wait(10)
        reader.cancel()
        messages = await asyncio.wait_for(mqtt, 30)
    finally:
        daemon.stop()
        broker.stop()
    stored = {row["wall_time"] for row in query(db, source="f", limit=100_000)}
    older = [p["wall_time"] for p in seen if p["wall_time"] < killed_at - 1.5]
    assert older and set(older) <= stored, (len(older), len(stored))
    assert "homeassistant/sensor/genred_f/config" in messages
    assert messages["genred/f/state"][-1][0]["genre"] == "high"
    config.write_text(yaml.safe_dump({
        "server": {"port": port}, "sources": [], "history": {"path": str(db)}}))
    with daemon_process(config, tmp_path / "daemon2.log", fake_model=True) as again:
        await again.wait_ready(port, 60)
        _, rows = await get_json(port, "/history?source=f&limit=100000")
    assert {row["wall_time"] for row in rows} == stored


async def wait_until_async(predicate, timeout_seconds: float) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout_seconds)


async def test_mqtt_shows_silent_and_unavailable_sources(tmp_path):
    """Home Assistant sees a silent source as "silent" and an ended one as unavailable (the
    per-source availability topic is in the sensor's discovery), not its last genre."""
    quiet = tmp_path / "quiet.wav"
    scipy.io.wavfile.write(quiet, 22050, np.zeros(22050 * 36, np.int16))
    broker = Broker(tmp_path).start()
    config = make_config([{"name": "quiet", "kind": "url", "url": str(quiet),
                           "realtime": False}], history={"enabled": False},
                         mqtt={"url": broker.url})
    try:
        async with running(config) as service:
            seen = await collect(broker.port, ["genred/#", "homeassistant/#"], lambda s: (
                [p for p, _ in s.get("genred/quiet/availability", [])][-2:] == ["online",
                                                                                 "offline"]
                and any(p["genre"] == "silent" for p, _ in s.get("genred/quiet/state", []))),
                60)
            health = service.health()
    finally:
        broker.stop()
    state = seen["genred/quiet/state"][-1][0]
    assert state["state"] == "silent" and state["confidence"] is None
    discovery = seen["homeassistant/sensor/genred_quiet/config"][-1][0]
    assert {"topic": "genred/quiet/availability"} in discovery["availability"]
    assert discovery["availability_mode"] == "all"
    assert health["sources"][0]["state"] == "ended" and health["mqtt"]["state"] == "connected"


def test_mqtt_state_display_follows_the_source() -> None:
    """silent / no music shown in place of the genre; the next prediction shows at once."""
    from daemon.messages import Prediction
    from daemon.mqtt import MqttConfig, MqttPublisher

    mqtt = MqttPublisher(MqttConfig(url="mqtt://127.0.0.1"), sources=["a"], model_name="m")
    queued = mqtt._queue
    mqtt.publish_source_state("a", "live")
    mqtt.publish_source_state("a", "no_music")
    mqtt.publish_source_state("a", "no_music")  # unchanged: nothing new
    prediction = Prediction(source="a", window_start_ms=0, window_end_ms=30000, wall_time=1.0,
                            genre="jazz", confidence=0.9, probabilities={"jazz": 0.9},
                            raw_probabilities={"jazz": 0.9}, model="m")
    mqtt.publish_prediction(prediction, False)
    mqtt.publish_source_state("a", "reconnecting")
    topics = [(topic, payload) for topic, payload, _ in queued]
    assert topics[0] == ("genred/a/availability", "online")
    assert [json.loads(p)["genre"] for t, p in topics if t == "genred/a/state"] == [
        "no music", "jazz"]
    assert topics[-1] == ("genred/a/availability", "offline")
