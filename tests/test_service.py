"""The wired pipeline in-process: real ffmpeg source, real server, real client, fake model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import numpy as np
import pytest
import websockets

from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.harness import fake_model, fake_predict
from tests.daemon_helpers import read_until, write_tone_wav


def make_config(sources: list[dict], **extra) -> object:
    return config_from_dict({"server": {"port": 0}, "sources": sources, **extra})


@contextlib.asynccontextmanager
async def running(config, model=None):
    service = build_service(config, model or fake_model())
    service.create_sources()
    await asyncio.wait_for(service.start_server(), 10)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_file_source_to_websocket_client(tmp_path):
    wav = write_tone_wav(tmp_path / "tone.wav", 9000, 40.0)
    config = make_config([{"name": "f", "kind": "url", "url": str(wav), "realtime": False}])
    async with running(config) as service:
        url = f"ws://127.0.0.1:{service.publisher.port}/"
        async with websockets.connect(url) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert hello["type"] == "hello" and hello["labels"] == ["low", "mid", "high"]
            messages = await read_until(ws, lambda m: m["type"] == "prediction", 30)
        health = service.health()
    waited = health["sources"][0]["window_wait_max_seconds"]
    assert 0.0 <= waited < 3.0 and health["window_wait_max_seconds"] == waited
    prediction = messages[-1]
    assert prediction["source"] == "f" and prediction["model"] == "fake"
    assert prediction["genre"] == "high"            # 9 kHz tone: energy in the top third
    assert abs(prediction["window_end_ms"] - prediction["window_start_ms"] - 29999) <= 1
    assert set(prediction["raw_probabilities"]) == {"low", "mid", "high"}
    states = [m["state"] for m in messages if m["type"] == "status"]
    assert "warming_up" in states or "live" in states


async def test_states_until_ended_and_health(tmp_path):
    wav = write_tone_wav(tmp_path / "short.wav", 440, 5.0)
    config = make_config([{"name": "short", "kind": "url", "url": str(wav),
                           "realtime": False}])
    async with running(config) as service:
        async with websockets.connect(f"ws://127.0.0.1:{service.publisher.port}/") as ws:
            messages = await read_until(
                ws, lambda m: m.get("type") == "status" and m["state"] == "ended", 20)
        health = service.health()
    states = [m["state"] for m in messages if m["type"] == "status"]
    assert states[-1] == "ended" and "warming_up" in states
    assert health["sources"][0]["state"] == "ended"
    assert abs(health["sources"][0]["audio_seconds"] - 5.0) < 0.2
    assert health["overload_ratio"] >= 0.0 and "effective_hop_seconds" in health["sources"][0]
    assert health["window_wait_max_seconds"] is None  # 5 s: no window ever waited
    assert health["sources"][0]["window_wait_max_seconds"] is None


async def test_one_failing_source_does_not_stop_others(tmp_path):
    wav = write_tone_wav(tmp_path / "ok.wav", 500, 35.0)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    config = make_config([
        {"name": "bad", "kind": "url", "url": str(bad), "realtime": False},
        {"name": "good", "kind": "url", "url": str(wav), "realtime": False},
    ])
    seen = {"bad_failed": False, "good_predicted": False}

    def both(message: dict) -> bool:
        if message.get("source") == "bad" and message.get("state") in ("error", "ended"):
            seen["bad_failed"] = True
        if message["type"] == "prediction" and message["source"] == "good":
            seen["good_predicted"] = message["genre"] == "low"
        return all(seen.values())

    async with running(config) as service, websockets.connect(
            f"ws://127.0.0.1:{service.publisher.port}/") as ws:
        await read_until(ws, both, 30)


async def test_silence_is_reported_without_inference(tmp_path):
    import numpy as np
    import scipy.io.wavfile

    silent = tmp_path / "silence.wav"
    scipy.io.wavfile.write(silent, 22050, np.zeros(22050 * 34, np.int16))
    config = make_config([{"name": "s", "kind": "url", "url": str(silent),
                           "realtime": False}])
    async with running(config) as service:
        async with websockets.connect(f"ws://127.0.0.1:{service.publisher.port}/") as ws:
            messages = await read_until(
                ws, lambda m: m.get("type") == "status" and m["state"] == "silent", 20)
        assert service.worker.windows_classified == 0
    assert not [m for m in messages if m["type"] == "prediction"]


@pytest.mark.parametrize("n_sources", [3])
async def test_sources_due_together_are_batched(tmp_path, n_sources):
    wav = write_tone_wav(tmp_path / "t.wav", 3000, 36.0)
    config = make_config([{"name": f"s{i}", "kind": "url", "url": str(wav),
                           "realtime": False} for i in range(n_sources)])
    model = fake_model()
    batch_sizes = []

    def slow_predict(images):
        batch_sizes.append(images.shape[0])
        time.sleep(0.2)  # an inference long enough for the other sources' windows to queue
        return fake_predict(images)

    model.serving.predict_rows = slow_predict
    async with running(config, model) as service:
        async with websockets.connect(f"ws://127.0.0.1:{service.publisher.port}/") as ws:
            await read_until(ws, lambda m: m.get("type") == "status" and m["state"] == "ended"
                             and m["source"] == "s0", 40)
        await asyncio.sleep(0.5)
        worker = service.worker
        assert max(batch_sizes) == n_sources
        assert worker.windows_classified + worker.windows_dropped >= n_sources
        assert worker.batches < worker.windows_classified  # some batches held >1 window


async def test_no_music_until_the_source_ends_publishes_nothing_and_stores_nothing(tmp_path):
    """Every window no music, read to the end: no prediction, no history row, no label change."""
    from daemon.history_query import query

    def no_music_predict(images):
        genres = fake_predict(images)
        return np.concatenate([genres * 0.1, np.full((len(images), 1), 0.9, np.float32)], 1)

    model = fake_model()
    model.serving.predict_rows = no_music_predict
    wav = write_tone_wav(tmp_path / "tone.wav", 440, 45.0)
    db = tmp_path / "history.sqlite3"
    config = make_config([{"name": "talk", "kind": "url", "url": str(wav), "realtime": False}],
                         history={"path": str(db), "commit_interval_seconds": 0.1})
    async with running(config, model) as service:
        async with websockets.connect(f"ws://127.0.0.1:{service.publisher.port}/") as ws:
            messages = await read_until(
                ws, lambda m: m["type"] == "status" and m["state"] == "ended", 30)
        classified = service.health()["sources"][0]["windows_classified"]
    states = [m["state"] for m in messages if m["type"] == "status"]
    assert "no_music" in states and states[-1] == "ended"
    assert classified >= 2  # the model saw windows: each was no music
    assert not [m for m in messages if m["type"] == "prediction"]
    assert db.is_file() and query(db) == []
