"""The bundled demo source and the shipped config's fallback to it (issue 14, item 1)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from pathlib import Path

import pytest
import websockets

from daemon.assembly import build_service
from daemon.cli import build_parser, resolve_config
from daemon.config import config_from_dict
from daemon.harness import REPO_ROOT, fake_model
from daemon.sources import SOURCE_KINDS, DeviceConfig, source_from_spec
from daemon.sources.demo import DEMO_DIR, DemoConfig, DemoSource, apply_demo_fallback, demo_clips
from tests.daemon_helpers import read_until

pytestmark = pytest.mark.timeout(60)
NO_DEVICES: list[dict] = []
ONE_DEVICE = [{"index": 0, "name": "mic", "max_input_channels": 1,
               "default_samplerate": 44100.0, "hostapi": "ALSA", "is_default": True}]


def test_bundled_clips_are_small_and_freely_licensed() -> None:
    """Every clip has a CC-BY or public-domain licence file; none is NC; a few MB in all."""
    clips = demo_clips()
    assert len(clips) >= 3
    assert sum(c.stat().st_size for c in clips) < 4_000_000
    for clip in clips:
        licence = clip.with_suffix(".txt").read_text(encoding="utf-8")
        assert not re.search(r"\bNC\b|by-nc|Noncommercial", licence, re.IGNORECASE), clip
        assert "CC-BY" in licence or "Public Domain" in licence, clip
    assert sorted(DEMO_DIR.glob("*.txt")) == sorted(c.with_suffix(".txt") for c in clips)


def test_demo_kind_and_spec() -> None:
    """'demo' is a source kind; --source demo: selects it."""
    assert SOURCE_KINDS["demo"] is DemoConfig
    assert source_from_spec("demo:", "source1", {}) == DemoConfig(name="source1", kind="demo")


def test_fallback_only_where_configured_and_no_device() -> None:
    """Off by default; with fallback: demo only on a machine without input devices."""
    plain = DeviceConfig(name="mic", kind="device")
    falling = DeviceConfig(name="line-in", kind="device", fallback="demo")
    assert apply_demo_fallback([plain], lambda: NO_DEVICES) == [plain]
    assert apply_demo_fallback([falling], lambda: ONE_DEVICE) == [falling]
    (demo,) = apply_demo_fallback([falling], lambda: NO_DEVICES)
    assert (demo.name, demo.kind) == ("demo", "demo")
    taken = DemoConfig(name="demo", kind="demo")
    assert [s.name for s in apply_demo_fallback([taken, falling], lambda: NO_DEVICES)] == [
        "demo", "line-in-demo"]


def test_shipped_config_says_fallback_and_source_flag_does_not() -> None:
    """The shipped config.yaml's device source falls back; --source device: never does."""
    args = build_parser().parse_args(["run", "--config", str(REPO_ROOT / "config.yaml")])
    shipped = [s for s in resolve_config(args).sources if s.kind in ("device", "demo")]
    assert shipped and all(s.kind == "demo" or s.fallback == "demo" for s in shipped)
    args = build_parser().parse_args(["run", "--config", str(REPO_ROOT / "config.yaml"),
                                      "--source", "device:"])
    (source,) = resolve_config(args).sources
    assert (source.kind, source.fallback) == ("device", None)


def _tone_clip(path: Path, frequency_hz: int, seconds: float) -> Path:
    """A short Ogg Vorbis tone with a licence file beside it."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"sine=frequency={frequency_hz}:sample_rate=44100:duration={seconds}",
                    "-c:a", "libvorbis", str(path)], check=True, timeout=30)
    path.with_suffix(".txt").write_text("Tone\nCC-BY https://creativecommons.org/\n")
    return path


async def test_playlist_prerolls_then_loops_with_titles(tmp_path: Path) -> None:
    """The pre-roll arrives at once, then real time; clips follow in order and repeat; titles."""
    clips = [_tone_clip(tmp_path / "01_A_-_One.ogg", 440, 2.0),
             _tone_clip(tmp_path / "02_B_-_Two.ogg", 880, 2.0)]
    states: list[tuple[str, str | None]] = []
    source = DemoSource("demo", clips, on_state=lambda s, m: states.append((s, m)),
                        preroll_seconds=8.0)
    started = time.monotonic()
    n_samples = 0
    preroll_done = None
    async with contextlib.aclosing(source.chunks()) as chunks:
        async for chunk in chunks:
            n_samples += chunk.size
            if preroll_done is None and n_samples >= 8.0 * 44100:
                preroll_done = time.monotonic()
            if n_samples >= 9.5 * 44100:
                break
    assert preroll_done is not None
    assert preroll_done - started < 4.0  # 8 s of pre-roll over 4 clip runs: no waiting
    assert time.monotonic() - preroll_done > 1.2  # then 1.5 s of audio at the wall clock's pace
    titles = [message for state, message in states if state == "live"]
    assert titles[:3] == ["demo playlist: A - One (CC-BY)", "demo playlist: B - Two (CC-BY)",
                          "demo playlist: A - One (CC-BY)"]  # in order, then round again
    await asyncio.wait_for(source.close(), 5)


async def test_next_clip_title_reaches_clients_in_the_same_state() -> None:
    """A new message in an unchanged state (the demo's next clip) is broadcast; repeats not."""
    config = config_from_dict({"server": {"port": 0}, "history": {"enabled": False},
                               "sources": [{"name": "demo", "kind": "demo"}]})
    service = build_service(config, fake_model())
    await asyncio.wait_for(service.start_server(), 10)
    try:
        url = f"ws://127.0.0.1:{service.publisher.port}/"
        async with websockets.connect(url) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # hello
            for title in ("demo playlist: A", "demo playlist: A", "demo playlist: B"):
                service._on_source_state("demo", "live", title)
            messages = await read_until(ws, lambda m: m.get("message") == "demo playlist: B", 5)
    finally:
        await asyncio.wait_for(service.publisher.close(), 10)
    statuses = [(m["state"], m["message"]) for m in messages if m["type"] == "status"]
    assert statuses == [("connecting", None),  # the snapshot after hello
                        ("warming_up", "demo playlist: A"), ("warming_up", "demo playlist: B")]
