"""PortAudio input devices (via sounddevice): list them, resolve a configured name or index."""

from __future__ import annotations

import logging
from typing import Any

from daemon.sources.base import SourceConfigError

_LOGGER = logging.getLogger(__name__)


def list_input_devices(refresh: bool = False) -> list[dict]:
    """Input devices: index, name, max_input_channels, default_samplerate, hostapi, is_default.

    ``refresh`` re-initialises PortAudio so that replugged devices appear (do not use it
    while other streams are open). Returns [] with a warning if PortAudio is unavailable.
    """
    try:
        import sounddevice
    except (OSError, ImportError) as error:
        _LOGGER.warning("PortAudio is not available (%s); no input devices", error)
        return []
    try:
        if refresh:
            sounddevice._terminate()
            sounddevice._initialize()
        devices = sounddevice.query_devices()
        hostapis = sounddevice.query_hostapis()
    except sounddevice.PortAudioError as error:
        _LOGGER.warning("cannot query PortAudio devices: %s", error)
        return []
    default_index = _default_input_index(sounddevice)
    return [
        {
            "index": index,
            "name": str(info["name"]),
            "max_input_channels": int(info["max_input_channels"]),
            "default_samplerate": float(info["default_samplerate"]),
            "hostapi": str(hostapis[info["hostapi"]]["name"]),
            "is_default": index == default_index,
        }
        for index, info in enumerate(devices)
        if info["max_input_channels"] > 0
    ]


def _default_input_index(sounddevice: Any) -> int:
    """PortAudio's default input device index, or -1 when there is none."""
    try:
        return int(sounddevice.query_devices(kind="input")["index"])
    except (sounddevice.PortAudioError, KeyError, TypeError, ValueError):
        return -1


def resolve_input_device(device: str | int | None, devices: list[dict]) -> dict:
    """The input device that ``device`` names: an index, its name or a unique part of it.

    None picks the default input device (else the first one). Raises SourceConfigError
    listing the available input devices when nothing or more than one device matches.
    """
    if not devices:
        wanted = "the default input device" if device is None else f"input device {device!r}"
        raise SourceConfigError(f"{wanted} not found: no audio input devices "
                                "(PortAudio lists none)")
    if device is None:
        return next((d for d in devices if d.get("is_default")), devices[0])
    if isinstance(device, int) or str(device).strip().isdigit():
        matches = [d for d in devices if d["index"] == int(device)]
    else:
        wanted = str(device).casefold()
        matches = [d for d in devices if d["name"].casefold() == wanted] or [
            d for d in devices if wanted in d["name"].casefold()]
    if len(matches) == 1:
        return matches[0]
    problem = "is ambiguous" if matches else "not found"
    listing = ", ".join(f"[{d['index']}] {d['name']!r}" for d in (matches or devices))
    raise SourceConfigError(f"input device {device!r} {problem}; input devices: {listing}")
