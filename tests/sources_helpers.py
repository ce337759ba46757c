"""Shared helpers of the source tests: clip generation, collectors, child processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daemon.sources import Source


def make_clip(path: Path, duration_seconds: float, frequency_hz: int = 440,
              codec_args: tuple[str, ...] = ()) -> Path:
    """Write a mono sine clip with real ffmpeg (format from the suffix)."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={frequency_hz}:duration={duration_seconds}:sample_rate=44100",
         "-ac", "1", *codec_args, str(path)],
        check=True, timeout=60)
    return path


def ffmpeg_children() -> set[int]:
    """Pids of this process's ffmpeg children (zombies included), from /proc."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return {pid for pid in pids if _command_name(pid) == "ffmpeg"}


def _command_name(pid: int) -> str:
    """The process's command name ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class Recorder:
    """Collects a source's states and chunks."""

    states: list[tuple[str, str | None]] = field(default_factory=list)
    chunks: list[np.ndarray] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_state(self, state: str, message: str | None) -> None:
        """StateCallback."""
        self.states.append((state, message))
        self.changed.set()

    @property
    def state_names(self) -> list[str]:
        """Reported states in order."""
        return [state for state, _ in self.states]

    @property
    def n_samples(self) -> int:
        """Samples received so far."""
        return sum(chunk.size for chunk in self.chunks)

    async def consume(self, source: Source) -> None:
        """Append every chunk of ``source`` until it finishes."""
        async for chunk in source.chunks():
            assert chunk.dtype == np.float32 and chunk.ndim == 1
            self.chunks.append(chunk)
            self.changed.set()

    async def wait_for(self, condition, timeout_seconds: float = 20.0) -> None:  # noqa: ANN001
        """Wait until ``condition()`` holds (checked on every state change or chunk)."""
        async def _wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(_wait(), timeout_seconds)
