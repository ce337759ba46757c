"""Source kind ``monitor``: what this machine plays, from a PulseAudio/PipeWire sink's monitor.

A sink's monitor (``<sink>.monitor``) carries what is sent to that output; with no sink
named, the default output's is used, looked up (``pactl get-default-sink``) at every
(re)connect, so a changed default output is followed. ffmpeg reads it (``-f pulse``) as the
url source reads a stream: reconnects with backoff, and a stall watchdog. PipeWire serves the
same protocol (pipewire-pulse).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from daemon.sources.base import SourceConfig, StateCallback
from daemon.sources.ffmpeg import UrlSource
from models.audio import NETWORK_STALL_SECONDS, AudioDecodeError, ffmpeg_decode_command
from models.resample import SAMPLE_RATE_HZ

_LOGGER = logging.getLogger(__name__)

PACTL_TIMEOUT_SECONDS = 5.0
MONITOR_SUFFIX = ".monitor"


def _pactl(*args: str) -> str:
    """pactl's output (AudioDecodeError when pactl is missing or the server does not answer)."""
    binary = shutil.which("pactl")
    if binary is None:
        raise AudioDecodeError("monitor", "pactl not found (Debian: apt install pulseaudio-utils)")
    try:
        result = subprocess.run([binary, *args], capture_output=True, text=True, check=False,
                                timeout=PACTL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AudioDecodeError("monitor", "the sound server did not answer pactl") from None
    if result.returncode != 0:
        raise AudioDecodeError("monitor", (result.stderr.strip() or "pactl failed")[:200])
    return result.stdout


def monitor_name(sink: str | None) -> str:
    """The monitor source of ``sink`` (the default output's when None)."""
    if sink is None:
        sink = _pactl("get-default-sink").strip()
        if not sink:
            raise AudioDecodeError("monitor", "the sound server has no default output")
    return sink if sink.endswith(MONITOR_SUFFIX) else sink + MONITOR_SUFFIX


def list_monitors() -> list[str]:
    """Names of the sound server's monitor sources ([] without pactl or a server)."""
    try:
        lines = _pactl("list", "short", "sources").splitlines()
    except AudioDecodeError as error:
        _LOGGER.debug("no monitors: %s", error)
        return []
    names = [line.split("\t")[1] for line in lines if line.count("\t") >= 1]
    return [name for name in names if name.endswith(MONITOR_SUFFIX)]


@dataclass(frozen=True, kw_only=True)
class MonitorConfig(SourceConfig):
    """Config of a ``monitor`` source."""

    KINDS = ("monitor",)

    sink: str | None = None
    """Output (sink) whose monitor is captured, or a monitor source's name; null = the
    default output."""

    def build(self, on_state: StateCallback) -> MonitorSource:
        """The ffmpeg capture of the monitor."""
        return MonitorSource(self.name, self.sink, on_state=on_state, backoff=self.backoff)

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> MonitorConfig | None:
        """'monitor:' (the default output) or 'monitor:SINK'."""
        kind, colon, rest = spec.partition(":")
        if kind != "monitor" or not colon or "//" in rest:
            return None
        return cls(name=name, kind="monitor", sink=rest or None)


class MonitorSource(UrlSource):
    """Captures a sink's monitor with ffmpeg; retried with backoff like a network stream."""

    kind = "monitor"

    def __init__(self, name: str, sink: str | None, **options: Any) -> None:
        super().__init__(name, "pulse", realtime=False, **options)
        self.sink = sink
        self.is_network = True  # a live stream: reconnect forever, never "ended"
        self.pacer = None
        self.waits_for_consumer = False
        self.stall_seconds = NETWORK_STALL_SECONDS

    def command(self) -> list[str]:
        """ffmpeg reading the monitor (looked up now: the default output may have changed)."""
        monitor = monitor_name(self.sink)
        _LOGGER.info("source %s: capturing %s", self.name, monitor)
        return ffmpeg_decode_command(monitor, SAMPLE_RATE_HZ, extra_input_args=("-f", "pulse"))
