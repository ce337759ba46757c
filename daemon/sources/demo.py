"""Source kind ``demo``: the bundled playlist of CC-BY / public-domain clips, looped in real time.

The shipped config.yaml's device source says ``fallback: demo``: on a machine with no input
device it plays this instead, so a first run shows a genre (see :func:`apply_demo_fallback`).
In code the fallback is off, so a configured service never substitutes the demo silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.messages import SourceState
from daemon.sources.base import SourceConfig, StateCallback, StateReporter
from daemon.sources.device import DeviceConfig
from daemon.sources.ffmpeg import UrlSource
from daemon.sources.portaudio import list_input_devices
from models.audio import ffmpeg_decode_command
from models.resample import SAMPLE_RATE_HZ

_LOGGER = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
"""The bundled clips (``NN_Artist_-_Title.ogg``, each with its licence ``.txt``)."""
PREROLL_SECONDS = 28.0
"""Audio handed on at once when the demo starts, so the first genre shows within seconds
(the model needs 30 s); the rest follows the wall clock."""


def demo_clips(folder: Path = DEMO_DIR) -> list[Path]:
    """The playlist: the folder's .ogg clips in name order."""
    return sorted(folder.glob("*.ogg"))


def clip_title(clip: Path) -> str:
    """'Artist - Title (licence)' from the clip's file name and its licence file."""
    title = clip.stem.split("_", 1)[-1].replace("_-_", " - ").replace("_", " ")
    licence_file = clip.with_suffix(".txt")
    lines = licence_file.read_text(encoding="utf-8").split("\n") if licence_file.is_file() else []
    licence = next((line.split("http")[0].strip(" :") for line in reversed(lines)
                    if line.strip()), "")
    return f"{title} ({licence})" if licence else title


@dataclass(frozen=True, kw_only=True)
class DemoConfig(SourceConfig):
    """Config of a ``demo`` source."""

    KINDS = ("demo",)

    def build(self, on_state: StateCallback) -> DemoSource:
        """The looping playlist source."""
        return DemoSource(self.name, demo_clips(), on_state=on_state)

    @classmethod
    def from_spec(cls, spec: str, name: str, options: dict[str, Any]) -> DemoConfig | None:
        """'demo' or 'demo:' (the bundled playlist)."""
        return cls(name=name, kind="demo") if spec in ("demo", "demo:") else None


class _TitleReporter(StateReporter):
    """Reports "live" with the playing clip's title as its message."""

    title: str | None = None

    def report(self, state: SourceState, message: str | None = None) -> None:
        """As StateReporter.report; "live" without a message carries the title."""
        if state == SourceState.LIVE and message is None:
            message = self.title
        super().report(state, message)


class DemoSource(UrlSource):
    """Plays ``clips`` one after another, forever, at real-time pace after a pre-roll."""

    kind = "demo"

    def __init__(self, name: str, clips: list[Path], on_state: StateCallback | None = None,
                 preroll_seconds: float = PREROLL_SECONDS) -> None:
        if not clips:
            raise ValueError(f"no demo clips in {DEMO_DIR}")
        super().__init__(name, str(clips[0]), realtime=True, loop=True, on_state=on_state)
        self.clips = clips
        self.index = 0
        """Position of the clip playing now in ``clips``."""
        self._preroll_samples = round(preroll_seconds * SAMPLE_RATE_HZ)
        self._reporter = _TitleReporter(name, on_state)
        self._reporter.title = f"demo playlist: {clip_title(clips[0])}"

    def command(self) -> list[str]:
        """ffmpeg decoding the current clip (the playlist, not ffmpeg, loops)."""
        return ffmpeg_decode_command(str(self.clips[self.index]), SAMPLE_RATE_HZ)

    async def _wait_due(self, n_samples: int) -> bool:
        """No wait during the pre-roll; then the wall clock's pace."""
        if self._preroll_samples > 0:
            self._preroll_samples -= n_samples
            return not self._closed.is_set()
        return await super()._wait_due(n_samples)

    async def _after_run(self, had_audio: bool) -> bool:
        """Move on to the next clip (a clip without audio is an error, as for ``url``)."""
        if had_audio:
            self.index = (self.index + 1) % len(self.clips)
            self._reporter.title = f"demo playlist: {clip_title(self.clips[self.index])}"
            self._reporter.report(SourceState.LIVE, None)
        return await super()._after_run(had_audio)


def apply_demo_fallback(sources: list[SourceConfig],
                        list_devices: Callable[[], list[dict]] = list_input_devices,
                        ) -> list[SourceConfig]:
    """Device sources with ``fallback: demo`` become the demo when no input device exists."""
    if not any(isinstance(s, DeviceConfig) and s.fallback == "demo" for s in sources):
        return sources
    if list_devices():
        return sources
    names = {s.name for s in sources}
    result: list[SourceConfig] = []
    for source in sources:
        if isinstance(source, DeviceConfig) and source.fallback == "demo":
            name = "demo" if "demo" not in names else f"{source.name}-demo"
            _LOGGER.warning(
                "source %s: no audio input device on this machine; playing the bundled demo "
                "playlist as source %r instead (config: fallback: demo). To listen to real "
                "audio: `genred devices` lists inputs, then `genred run --source device:NAME`; "
                "or a stream or file: `genred run --source URL`; or edit config.yaml's sources",
                source.name, name)
            source = DemoConfig(name=name, kind="demo", backoff=source.backoff)
        result.append(source)
    return result

