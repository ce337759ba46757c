"""Source basics (backoff, states, PCM decoding) and PcmSource over real TCP and pipes."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest

from daemon.sources import BackoffPolicy, PcmDecoder, PcmSource, SourceConfigError
from daemon.sources.base import Retrier, SourceState, StateReporter
from models.resample import SAMPLE_RATE_HZ, resample
from tests.sources_helpers import Recorder


def test_backoff_grows_caps_and_jitters() -> None:
    exact = BackoffPolicy(initial_seconds=1.0, max_seconds=30.0, multiplier=2.0,
                          jitter_fraction=0.0)
    rng = random.Random(0)
    assert [exact.delay_seconds(a, rng) for a in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    jittered = BackoffPolicy()
    delays = [jittered.delay_seconds(3, rng) for _ in range(500)]
    assert 8 * 0.8 <= min(delays) < 8 * 0.85 and 8 * 1.15 < max(delays) <= 8 * 1.2
    assert abs(np.mean(delays) - 8) < 0.2
    assert 24 <= jittered.delay_seconds(1000, rng) <= 36


async def test_retrier_resets_after_steady_audio() -> None:
    retrier = Retrier(BackoffPolicy(initial_seconds=0.01, reset_after_seconds=0.0))
    closed = asyncio.Event()
    assert await asyncio.wait_for(retrier.wait(closed), 1)
    assert await asyncio.wait_for(retrier.wait(closed), 1)
    assert retrier.attempt == 2
    retrier.note_connected()
    retrier.note_audio()
    assert retrier.attempt == 0
    closed.set()
    assert not await asyncio.wait_for(retrier.wait(closed), 1)


def test_state_reporter_dedups_and_survives_callback_errors() -> None:
    seen: list[tuple[str, str | None]] = []

    def callback(state: str, message: str | None) -> None:
        seen.append((state, message))
        raise RuntimeError("broken listener")

    reporter = StateReporter("s", callback)
    reporter.report(SourceState.LIVE)
    reporter.report(SourceState.LIVE)
    reporter.report(SourceState.ERROR, "boom")
    assert seen == [("live", None), ("error", "boom")]
    assert isinstance(seen[0][0], str) and type(seen[0][0]) is str


def test_decoder_s16_stereo_partial_frames() -> None:
    left = np.array([0, 16384, -32768, 32767], dtype="<i2")
    right = np.array([0, 0, -32768, 32767], dtype="<i2")
    data = np.stack([left, right], axis=1).tobytes()
    decoder = PcmDecoder("s16le", channels=2)
    pieces = [decoder.decode(data[i:i + 3]) for i in range(0, len(data), 3)]
    mono = np.concatenate(pieces)
    assert decoder.pending_bytes == 0
    np.testing.assert_allclose(mono, [0.0, 0.25, -1.0, 32767 / 32768], atol=1e-6)
    assert decoder.decode(b"").size == 0


def test_decoder_f32_hostile_values(caplog: pytest.LogCaptureFixture) -> None:
    decoder = PcmDecoder("f32le", channels=1, source_name="hostile")
    values = np.array([np.nan, np.inf, -np.inf, 1e30, -5.0, 0.5], dtype="<f4")
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            out = decoder.decode(values.tobytes())
    np.testing.assert_array_equal(out, [0, 0, 0, 1, -1, 0.5])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # rate limited: one per kind, not one per call
    with pytest.raises(ValueError):
        PcmDecoder("u8")


async def _tcp_source(recorder: Recorder, **kwargs: object) -> tuple[PcmSource, asyncio.Task]:
    source = PcmSource("pcm", "tcp", on_state=recorder.on_state, **kwargs)
    await asyncio.wait_for(source.start(), 5)
    assert source.port > 0
    return source, asyncio.create_task(recorder.consume(source))


async def _send(port: int, data: bytes, piece_bytes: int = 1001) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    for start in range(0, len(data), piece_bytes):
        writer.write(data[start:start + piece_bytes])
        writer.write(b"")
        await asyncio.wait_for(writer.drain(), 5)
    writer.close()
    await asyncio.wait_for(writer.wait_closed(), 5)


async def _stop(source: PcmSource, consumer: asyncio.Task) -> None:
    await asyncio.wait_for(source.close(), 5)
    await asyncio.wait_for(consumer, 5)


async def test_tcp_s16_stereo_22050_becomes_mono_44100() -> None:
    rng = np.random.default_rng(3)
    stereo = (rng.uniform(-0.5, 0.5, (22050, 2)) * 32768).astype("<i2")
    recorder = Recorder()
    source, consumer = await _tcp_source(recorder, sample_rate_hz=22050, channels=2)
    await _send(source.port, stereo.tobytes())
    await recorder.wait_for(lambda: recorder.state_names[-1] == "reconnecting")
    received = np.concatenate(recorder.chunks)
    expected = resample(stereo.astype(np.float32).mean(axis=1) / 32768, 22050, SAMPLE_RATE_HZ)
    assert SAMPLE_RATE_HZ - 30 <= received.size <= SAMPLE_RATE_HZ
    np.testing.assert_allclose(received, expected[: received.size], atol=1e-4)
    await _stop(source, consumer)
    assert recorder.state_names == ["connecting", "live", "reconnecting", "ended"]


async def test_tcp_second_producer_waits_third_is_refused_idle_one_is_replaced() -> None:
    recorder = Recorder()
    source, consumer = await _tcp_source(recorder, sample_rate_hz=SAMPLE_RATE_HZ)
    first_reader, first = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", source.port), 5)
    first.write(np.zeros(4410, dtype="<i2").tobytes())
    await recorder.wait_for(lambda: recorder.n_samples >= 4410)
    second_reader, second = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", source.port), 5)
    second.write(np.full(4410, 1000, dtype="<i2").tobytes())  # waits while the first sends
    third_reader, third = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", source.port), 5)
    assert await asyncio.wait_for(third_reader.read(), 5) == b""  # closed by the source
    third.close()
    for n_chunks in range(2, 6):  # the first keeps sending (never idle for 1 s)
        first.write(np.zeros(4410, dtype="<i2").tobytes())
        await recorder.wait_for(lambda n=n_chunks: recorder.n_samples >= n * 4410)
        await asyncio.sleep(0.3)
    assert recorder.n_samples == 5 * 4410 and np.all(np.concatenate(recorder.chunks) == 0)
    await recorder.wait_for(lambda: recorder.n_samples >= 6 * 4410)  # first idle 1 s: replaced
    assert await asyncio.wait_for(first_reader.read(), 5) == b""
    first.close()
    second.close()
    await recorder.wait_for(lambda: recorder.state_names[-1] == "reconnecting")
    await _stop(source, consumer)
    assert recorder.state_names == ["connecting", "live", "reconnecting", "live",
                                    "reconnecting", "ended"]
    assert np.allclose(recorder.chunks[-1], 1000 / 32768)


async def test_tcp_idle_producer_is_dropped_after_the_timeout() -> None:
    recorder = Recorder()
    source, consumer = await _tcp_source(recorder, sample_rate_hz=SAMPLE_RATE_HZ,
                                         idle_timeout_seconds=1.5)
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", source.port), 5)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # silent: closed by the source
    assert 1.4 <= asyncio.get_running_loop().time() - started <= 3.0
    writer.close()
    await _stop(source, consumer)


async def test_tcp_hostile_f32_input_does_not_crash() -> None:
    recorder = Recorder()
    source, consumer = await _tcp_source(recorder, sample_rate_hz=SAMPLE_RATE_HZ,
                                         pcm_format="f32le", channels=1)
    values = np.array([np.nan, np.inf, 1e30, -1e30, 0.25, -3.0, 2.0, 0.0], dtype="<f4")
    data = np.tile(values, 500).tobytes() + b"\x01\x02\x03"  # ends on a partial frame
    await _send(source.port, data, piece_bytes=7)
    await recorder.wait_for(lambda: recorder.state_names[-1] == "reconnecting")
    received = np.concatenate(recorder.chunks)
    assert received.size == 4000
    assert np.all(np.isfinite(received)) and np.max(np.abs(received)) <= 1.0
    await _send(source.port, b"")  # a producer that sends nothing
    await _send(source.port, np.full(100, 0.5, dtype="<f4").tobytes())
    await recorder.wait_for(lambda: recorder.n_samples >= 4100)
    await _stop(source, consumer)
    np.testing.assert_array_equal(np.concatenate(recorder.chunks)[4000:], 0.5)


async def test_tcp_port_in_use_is_a_config_error() -> None:
    recorder = Recorder()
    source, consumer = await _tcp_source(recorder, sample_rate_hz=SAMPLE_RATE_HZ)
    clash = PcmSource("clash", "tcp", sample_rate_hz=SAMPLE_RATE_HZ, port=source.port)
    with pytest.raises(SourceConfigError, match="cannot listen"):
        await asyncio.wait_for(clash.start(), 5)
    await _stop(source, consumer)


async def test_stdin_pipe_reads_to_end() -> None:
    read_fd, write_fd = os.pipe()
    samples = np.linspace(-0.5, 0.5, 16000).astype("<f4")
    recorder = Recorder()
    source = PcmSource("stdin", "stdin", sample_rate_hz=16000, pcm_format="f32le",
                       on_state=recorder.on_state, stdin_fd=read_fd)
    consumer = asyncio.create_task(recorder.consume(source))
    with os.fdopen(write_fd, "wb") as pipe:
        await asyncio.wait_for(asyncio.to_thread(pipe.write, samples.tobytes()), 5)
    await asyncio.wait_for(consumer, 10)
    os.close(read_fd)
    assert recorder.n_samples == len(resample(samples, 16000, SAMPLE_RATE_HZ))
    assert recorder.state_names == ["connecting", "live", "ended"]


async def test_stdin_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "pcm.raw"
    path.write_bytes(np.zeros(44100, dtype="<i2").tobytes())
    recorder = Recorder()
    with path.open("rb") as file:
        source = PcmSource("file", "stdin", sample_rate_hz=SAMPLE_RATE_HZ,
                           on_state=recorder.on_state, stdin_fd=file.fileno())
        await asyncio.wait_for(recorder.consume(source), 10)
    assert recorder.n_samples == 44100
    assert recorder.state_names == ["connecting", "live", "ended"]


def test_bad_pcm_configuration() -> None:
    with pytest.raises(SourceConfigError):
        PcmSource("x", "udp", sample_rate_hz=44100)
    with pytest.raises(SourceConfigError):
        PcmSource("x", "tcp", sample_rate_hz=44100, pcm_format="s24le")
