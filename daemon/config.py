"""config.yaml -> frozen dataclasses, validated with errors that name the key path."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from daemon.schema import ConfigError, build_dataclass, check

TOKEN_ENV = "GENRED_TOKEN"
SOURCE_KINDS = ("device", "url", "stdin", "tcp")
URL_SCHEMES = ("http", "https", "file", "rtmp", "rtsp", "udp", "tcp", "srt", "hls")


@dataclass(frozen=True)
class BackoffConfig:
    """Reconnect timing of network and device sources."""

    initial_seconds: float = 1.0
    """First retry delay in seconds."""
    max_seconds: float = 30.0
    """Longest retry delay in seconds."""
    multiplier: float = 2.0
    """Delay growth factor per failed attempt."""
    jitter_fraction: float = 0.2
    """Random +/- fraction applied to each delay."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(self.initial_seconds > 0, f"{path}.initial_seconds", "must be > 0",
               self.initial_seconds)
        check(self.max_seconds >= self.initial_seconds, f"{path}.max_seconds",
               "must be >= initial_seconds", self.max_seconds)
        check(self.multiplier >= 1, f"{path}.multiplier", "must be >= 1", self.multiplier)
        check(0 <= self.jitter_fraction < 1, f"{path}.jitter_fraction", "must be in [0, 1)",
               self.jitter_fraction)


@dataclass(frozen=True)
class SourceConfig:
    """One audio source."""

    name: str
    """Unique name shown to clients."""
    kind: str
    """One of device, url, stdin, tcp."""
    url: str | None = None
    """url: a file path or a URL ffmpeg reads (http(s) radio, file, ...)."""
    device: str | int | None = None
    """device: input device index or (part of its) name; null = system default."""
    realtime: bool = True
    """url files: read at real-time pace (false: as fast as the pipeline allows)."""
    loop: bool = False
    """url files: restart at the end instead of ending."""
    sample_rate_hz: int | None = None
    """device: capture rate (null = device default); stdin/tcp: PCM rate."""
    channels: int = 1
    """stdin/tcp/device: interleaved channels (averaged to mono)."""
    pcm_format: Literal["s16le", "f32le"] = "s16le"
    """stdin/tcp: sample format."""
    host: str = "127.0.0.1"
    """tcp: address to listen on for a PCM producer."""
    port: int = 0
    """tcp: port to listen on."""
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    """Reconnect timing."""

    def validate(self, path: str) -> None:
        """Kind-specific checks."""
        check(bool(self.name.strip()), f"{path}.name", "must not be empty", self.name)
        check(self.kind in SOURCE_KINDS, f"{path}.kind", f"must be one of {SOURCE_KINDS}",
               self.kind)
        if self.kind == "url":
            check(bool(self.url), f"{path}.url", "is required for kind url", self.url)
            _check_url(self.url or "", f"{path}.url")
        if self.kind in ("stdin", "tcp"):
            check(self.sample_rate_hz is not None, f"{path}.sample_rate_hz",
                   "is required for raw PCM", self.sample_rate_hz)
        if self.kind == "tcp":
            check(0 < self.port < 65536, f"{path}.port", "must be in 1..65535", self.port)
        if self.sample_rate_hz is not None:
            check(8000 <= self.sample_rate_hz <= 384000, f"{path}.sample_rate_hz",
                   "must be in 8000..384000", self.sample_rate_hz)
        check(1 <= self.channels <= 32, f"{path}.channels", "must be in 1..32", self.channels)
        self.backoff.validate(f"{path}.backoff")


@dataclass(frozen=True)
class ServerConfig:
    """WebSocket + HTTP server."""

    host: str = "127.0.0.1"
    """Bind address; anything but loopback requires a token."""
    port: int = 8765
    """TCP port (0 = any free port)."""
    token: str | None = None
    """Shared secret clients must send (?token= or Authorization: Bearer); env GENRED_TOKEN."""
    allowed_origins: list[str] | None = None
    """Browser Origins allowed to connect; null = any."""
    client_queue_size: int = 64
    """Pending messages kept per client; the oldest are dropped beyond it."""
    max_message_bytes: int = 4096
    """Largest client message accepted, in bytes."""

    def validate(self, path: str) -> None:
        """Range checks and the non-loopback token rule."""
        check(0 <= self.port < 65536, f"{path}.port", "must be in 0..65535", self.port)
        check(self.client_queue_size >= 1, f"{path}.client_queue_size", "must be >= 1",
               self.client_queue_size)
        check(self.max_message_bytes >= 64, f"{path}.max_message_bytes", "must be >= 64",
               self.max_message_bytes)
        check(is_loopback(self.host) or bool(self.token), f"{path}.token",
               f"is required when binding to non-loopback address {self.host!r} "
               f"(set server.token or the {TOKEN_ENV} environment variable)", self.token)


@dataclass(frozen=True)
class SmoothingConfig:
    """Smoothing of window probabilities and label hysteresis."""

    method: Literal["ema", "mean"] = "ema"
    """ema (exponential moving average) or mean (moving average over window_hops)."""
    alpha: float = 0.5
    """EMA weight of the newest window, in (0, 1]."""
    window_hops: int = 5
    """Moving-average length in hops."""
    hysteresis_margin: float = 0.1
    """A new genre must lead the current one by this much smoothed probability..."""
    hysteresis_hops: int = 2
    """...for this many consecutive hops before the label changes."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(0 < self.alpha <= 1, f"{path}.alpha", "must be in (0, 1]", self.alpha)
        check(self.window_hops >= 1, f"{path}.window_hops", "must be >= 1", self.window_hops)
        check(0 <= self.hysteresis_margin < 1, f"{path}.hysteresis_margin",
               "must be in [0, 1)", self.hysteresis_margin)
        check(self.hysteresis_hops >= 1, f"{path}.hysteresis_hops", "must be >= 1",
               self.hysteresis_hops)


@dataclass(frozen=True)
class WindowConfig:
    """Rolling-window scheduling."""

    hop_seconds: float = 2.0
    """Seconds between classifications (rounded to whole time bins)."""
    silence_rms_dbfs: float = -50.0
    """Windows whose newest hop is quieter than this RMS (dB re full scale) are 'silent'."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(0.1 <= self.hop_seconds <= 30, f"{path}.hop_seconds", "must be in [0.1, 30]",
               self.hop_seconds)
        check(-120 <= self.silence_rms_dbfs <= 0, f"{path}.silence_rms_dbfs",
               "must be in [-120, 0]", self.silence_rms_dbfs)


@dataclass(frozen=True)
class InferenceConfig:
    """Classifier worker."""

    max_batch_size: int = 8
    """Most windows run in one inference batch."""
    runtime: Literal["keras", "tflite"] = "keras"
    """keras: the artifact's Keras model; tflite: its TFLite export (``genred export``)."""
    num_threads: int | None = None
    """tflite: interpreter threads (null = every core)."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(1 <= self.max_batch_size <= 256, f"{path}.max_batch_size", "must be in 1..256",
               self.max_batch_size)
        check(self.runtime in ("keras", "tflite"), f"{path}.runtime",
               "must be one of ['keras', 'tflite']", self.runtime)
        check(self.num_threads is None or 1 <= self.num_threads <= 256,
               f"{path}.num_threads", "must be in 1..256 or null", self.num_threads)


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration."""

    model: str = "models/genred-default"
    """Model artifact folder (relative paths are relative to the config file)."""
    sources: list[SourceConfig] = field(default_factory=list)
    """Audio sources to listen to."""
    server: ServerConfig = field(default_factory=ServerConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Logging level on stderr."""

    def validate(self, path: str = "") -> None:
        """Validate every section; source names must be unique."""
        prefix = f"{path}." if path else ""
        for index, source in enumerate(self.sources):
            source.validate(f"{prefix}sources[{index}]")
        names = [source.name for source in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        check(not duplicates, f"{prefix}sources", "names must be unique", duplicates)
        for name in ("server", "window", "smoothing", "inference"):
            getattr(self, name).validate(prefix + name)


def _check_url(url: str, path: str) -> None:
    """A url source is a URL with a known scheme or a path to an existing file."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        check(scheme in URL_SCHEMES, path, f"unknown URL scheme (known: {URL_SCHEMES})", url)
    elif url != "-":
        check(Path(url).is_file(), path, "file not found", url)


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1 addresses."""
    return host in ("localhost", "::1") or host.startswith("127.")


def config_from_dict(data: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Build and validate a Config; relative model/file paths resolve against base_dir."""
    config = build_dataclass(Config, data or {}, "")
    token = config.server.token or os.environ.get(TOKEN_ENV) or None
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, token=token))
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    config.validate()
    return config


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    """Make the model path and local file sources absolute relative to ``base_dir``."""
    def resolve(text: str) -> str:
        return text if "://" in text or text == "-" or Path(text).is_absolute() \
            else str((base_dir / text).resolve())

    sources = [dataclasses.replace(s, url=resolve(s.url)) if s.kind == "url" and s.url else s
               for s in config.sources]
    return dataclasses.replace(config, model=resolve(config.model), sources=sources)


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a YAML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({error})") from error
    return config_from_dict(data or {}, base_dir=path.parent.resolve())
