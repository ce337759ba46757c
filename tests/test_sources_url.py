"""UrlSource with real ffmpeg: local files (end, loop, error) and a flaky HTTP stream."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from daemon.sources import BackoffPolicy, UrlSource, is_network_url
from models.resample import SAMPLE_RATE_HZ
from tests.sources_helpers import Recorder, ffmpeg_children, make_clip

FAST_BACKOFF = BackoffPolicy(initial_seconds=0.1, max_seconds=0.3, jitter_fraction=0.2)


@pytest.fixture(scope="module")
def flac_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "sine.flac", 3.0)


@pytest.fixture(scope="module")
def ogg_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "sine.ogg", 20.0,
                     codec_args=("-c:a", "libvorbis", "-q:a", "2"))


def test_is_network_url() -> None:
    assert is_network_url("http://example.org/radio")
    assert is_network_url("rtsp://10.0.0.1/cam")
    assert not is_network_url("file:///tmp/a.ogg")
    assert not is_network_url("/tmp/a.ogg")


async def test_local_file_plays_once_and_ends(flac_clip: Path) -> None:
    recorder = Recorder()
    source = UrlSource("file", str(flac_clip), realtime=False, loop=False,
                       on_state=recorder.on_state)
    assert "-rw_timeout" not in source.command()
    await asyncio.wait_for(recorder.consume(source), 30)
    assert abs(recorder.n_samples - 3 * SAMPLE_RATE_HZ) < 0.01 * SAMPLE_RATE_HZ
    assert recorder.state_names == ["connecting", "live", "ended"]
    assert source.pid not in ffmpeg_children()


async def test_local_file_loops_until_closed(flac_clip: Path) -> None:
    recorder = Recorder()
    source = UrlSource("loop", str(flac_clip), realtime=False, loop=True,
                       on_state=recorder.on_state)
    consumer = asyncio.create_task(recorder.consume(source))
    await recorder.wait_for(lambda: recorder.n_samples > 0, 10)
    first_pid = source.pid
    await recorder.wait_for(lambda: recorder.n_samples > 7 * SAMPLE_RATE_HZ, 30)
    assert source.pid == first_pid  # one ffmpeg (-stream_loop) for every pass
    await asyncio.wait_for(source.close(), 10)
    await asyncio.wait_for(consumer, 10)
    assert recorder.state_names == ["connecting", "live", "ended"]
    assert recorder.states[-1] == ("ended", "closed")
    assert not ffmpeg_children()


async def test_missing_file_reports_error(tmp_path: Path) -> None:
    recorder = Recorder()
    source = UrlSource("missing", str(tmp_path / "nope.ogg"), on_state=recorder.on_state)
    await asyncio.wait_for(recorder.consume(source), 30)
    assert recorder.n_samples == 0
    assert recorder.state_names == ["connecting", "error"]
    assert "nope.ogg" in (recorder.states[-1][1] or "")


async def test_close_while_consumer_paused_reaps_ffmpeg(tmp_path: Path) -> None:
    long_clip = make_clip(tmp_path / "long.flac", 60.0)
    source = UrlSource("paused", str(long_clip), realtime=False)
    chunks = source.chunks()
    first = await asyncio.wait_for(anext(chunks), 10)
    assert first.size > 0
    await asyncio.sleep(0.5)  # ffmpeg fills the pipe while nobody reads
    pid = source.pid
    assert pid in ffmpeg_children()
    # ffmpeg obeys SIGTERM at once; only a hang on the full, paused stdout pipe takes longer.
    await asyncio.wait_for(source.close(), 1.5)
    assert pid not in ffmpeg_children()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(chunks), 5)


class PacedOggServer:
    """HTTP/1.0 server streaming an Ogg file at ``speed`` x real time; killable mid-stream."""

    def __init__(self, data: bytes, duration_seconds: float, speed: float = 2.0) -> None:
        self.data = data
        self.bytes_per_second = len(data) / duration_seconds * speed
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.handlers: list[asyncio.Task] = []
        self.port = 0
        self.requests = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.wait_for(
            asyncio.start_server(self._serve, "127.0.0.1", port, reuse_address=True), 5)
        self.port = self.server.sockets[0].getsockname()[1]

    async def kill(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await asyncio.wait_for(asyncio.gather(*self.handlers), 5)
        await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.handlers.append(asyncio.current_task())
        self.requests += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\n\r\n")
            piece_bytes = max(1, int(self.bytes_per_second / 20))
            for start in range(0, len(self.data), piece_bytes):
                writer.write(self.data[start:start + piece_bytes])
                await asyncio.wait_for(writer.drain(), 5)
                await asyncio.sleep(0.05)
            writer.close()


async def test_network_stream_reconnects_after_server_dies(ogg_clip: Path) -> None:
    server = PacedOggServer(ogg_clip.read_bytes(), duration_seconds=20.0, speed=2.0)
    await server.start()
    recorder = Recorder()
    source = UrlSource("radio", f"http://127.0.0.1:{server.port}/stream.ogg", realtime=False,
                       on_state=recorder.on_state, backoff=FAST_BACKOFF)
    assert "-rw_timeout" in source.command()
    consumer = asyncio.create_task(recorder.consume(source))
    try:
        await recorder.wait_for(lambda: recorder.n_samples > SAMPLE_RATE_HZ)
        assert recorder.state_names == ["connecting", "live"]
        await server.kill()
        await recorder.wait_for(lambda: recorder.state_names[-1] == "reconnecting")
        await asyncio.sleep(0.5)  # a few refused attempts while the server is down
        samples_while_down = recorder.n_samples
        await server.start(server.port)
        await recorder.wait_for(lambda: recorder.state_names[-1] == "live")
        await recorder.wait_for(lambda: recorder.n_samples > samples_while_down + SAMPLE_RATE_HZ)
        assert server.requests >= 2
    finally:
        await asyncio.wait_for(source.close(), 10)
        await asyncio.wait_for(consumer, 10)
        await server.kill()
    states = [s for i, s in enumerate(recorder.state_names) if s != recorder.state_names[i - 1]]
    assert states == ["connecting", "live", "reconnecting", "live", "ended"]
    assert any("Connection refused" in (message or "") for _, message in recorder.states)
    assert not ffmpeg_children()


def test_realtime_pacing_applies_to_files_not_network_streams(tmp_path):
    clip = tmp_path / "x.flac"
    assert UrlSource("f", str(clip), realtime=True).pacer is not None
    assert UrlSource("f", str(clip), realtime=False).pacer is None
    network = UrlSource("n", "http://127.0.0.1:9/live.mp3", realtime=True)
    assert network.pacer is None and "-rw_timeout" in network.command()
    # the daemon paces files itself: ffmpeg's -re polls every 10 ms in every decoder
    assert "-re" not in UrlSource("f", str(clip), realtime=True).command()


async def test_realtime_looped_file_follows_the_wall_clock(flac_clip: Path) -> None:
    """A 3-s clip looped in real time: audio delivered tracks wall time across restarts."""
    recorder = Recorder()
    source = UrlSource("rt", str(flac_clip), realtime=True, loop=True,
                       on_state=recorder.on_state)
    consumer = asyncio.create_task(recorder.consume(source))
    await recorder.wait_for(lambda: recorder.n_samples > 0, 10)
    started = asyncio.get_running_loop().time()
    first_samples = recorder.n_samples
    await asyncio.sleep(7.0)  # two loop restarts
    elapsed_seconds = asyncio.get_running_loop().time() - started
    audio_seconds = (recorder.n_samples - first_samples) / SAMPLE_RATE_HZ
    await asyncio.wait_for(source.close(), 10)
    await asyncio.wait_for(consumer, 10)
    # not faster than real time (one 0.1-s read ahead at most), and no time lost at restarts
    assert elapsed_seconds - 0.35 < audio_seconds < elapsed_seconds + 0.15
    assert source.pacer.reanchors == 0
    assert recorder.state_names == ["connecting", "live", "ended"]
    assert not ffmpeg_children()


async def test_close_during_a_pacing_wait_ends_promptly(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "long.flac", 30.0)
    source = UrlSource("rt", str(clip), realtime=True)
    chunks = source.chunks()
    await asyncio.wait_for(anext(chunks), 10)
    for _ in range(50):  # read until a read is held back by the clock (a loaded machine lags)
        waiting = asyncio.create_task(anext(chunks, None))
        await asyncio.sleep(0.02)
        if not waiting.done():
            break
        assert waiting.result() is not None
    assert not waiting.done(), "no read ever waited for the real-time clock"
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(source.close(), 5)
    assert await asyncio.wait_for(waiting, 5) is None
    assert asyncio.get_running_loop().time() - started < 2.0
    assert not ffmpeg_children()
