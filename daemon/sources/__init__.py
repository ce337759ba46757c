"""Audio sources: devices, files/URLs via ffmpeg, raw PCM; all yield 44.1 kHz mono float32.

SOURCE_TYPES is the one table of source kinds: a kind is its module (config, source,
``--source`` spec parser) plus one line here.
"""

from typing import Any

from daemon.sources.base import (
    BackoffPolicy,
    Source,
    SourceConfig,
    SourceConfigError,
    StateCallback,
)
from daemon.sources.decoding import PCM_FORMATS, PcmDecoder
from daemon.sources.demo import DemoConfig
from daemon.sources.device import DeviceConfig, DeviceSource
from daemon.sources.ffmpeg import UrlConfig, UrlSource, is_network_url
from daemon.sources.monitor import MonitorConfig, MonitorSource, list_monitors
from daemon.sources.pcm import PCM_TRANSPORTS, PcmConfig, PcmSource
from daemon.sources.portaudio import list_input_devices, resolve_input_device

SOURCE_TYPES: tuple[type[SourceConfig], ...] = (
    DeviceConfig,
    PcmConfig,
    DemoConfig,
    MonitorConfig,
    UrlConfig,  # last: any --source SPEC is a file path or URL
)
SOURCE_KINDS: dict[str, type[SourceConfig]] = {
    kind: config_type for config_type in SOURCE_TYPES for kind in config_type.KINDS}
"""kind name -> its config class."""


def source_from_spec(spec: str, name: str, options: dict[str, Any]) -> SourceConfig:
    """The config of a ``--source`` SPEC: the first kind that recognises it."""
    for config_type in SOURCE_TYPES:
        config = config_type.from_spec(spec, name, options)
        if config is not None:
            return config
    raise ValueError(f"no source kind takes {spec!r}")


__all__ = [
    "PCM_FORMATS",
    "PCM_TRANSPORTS",
    "SOURCE_KINDS",
    "SOURCE_TYPES",
    "BackoffPolicy",
    "DeviceConfig",
    "DeviceSource",
    "MonitorConfig",
    "MonitorSource",
    "PcmConfig",
    "PcmDecoder",
    "PcmSource",
    "Source",
    "SourceConfig",
    "SourceConfigError",
    "StateCallback",
    "UrlConfig",
    "UrlSource",
    "is_network_url",
    "list_input_devices",
    "list_monitors",
    "resolve_input_device",
    "source_from_spec",
]
