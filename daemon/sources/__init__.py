"""Audio sources: devices, files/URLs via ffmpeg, raw PCM; all yield 44.1 kHz mono float32."""

from daemon.sources.base import (
    BackoffPolicy,
    Source,
    SourceConfigError,
    SourceState,
    StateCallback,
)
from daemon.sources.decoding import PCM_FORMATS, PcmDecoder
from daemon.sources.device import DeviceSource, list_input_devices, resolve_input_device
from daemon.sources.ffmpeg import UrlSource, is_network_url
from daemon.sources.pcm import PCM_TRANSPORTS, PcmSource
from models.resample import StreamingResampler

__all__ = [
    "PCM_FORMATS",
    "PCM_TRANSPORTS",
    "BackoffPolicy",
    "DeviceSource",
    "PcmDecoder",
    "PcmSource",
    "Source",
    "SourceConfigError",
    "SourceState",
    "StateCallback",
    "StreamingResampler",
    "UrlSource",
    "is_network_url",
    "list_input_devices",
    "resolve_input_device",
]
