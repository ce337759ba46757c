"""config.yaml -> frozen dataclasses, validated with errors that name the key path."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from daemon.change import ChangeConfig
from daemon.history import HistoryConfig
from daemon.mqtt_config import MqttConfig, check_source_slugs
from daemon.netaddr import is_loopback  # noqa: F401 (also imported from here)
from daemon.schema import ConfigError, build_dataclass, check
from daemon.smoother import SmoothingConfig
from daemon.sources import SOURCE_KINDS, SourceConfig
from daemon.yamlsafe import load_yaml, one_line
from models.loader import RUNTIMES
from models.outcome import SILENCE_RMS_DBFS
from models.precision import PRECISIONS, runtime_precision_error
from models.shipped import DEFAULT_MODEL_DIR

_LOGGER = logging.getLogger(__name__)

TOKEN_ENV = "GENRED_TOKEN"
MAX_ERROR_CHARS = 600
"""Longest YAML parser message quoted in a config error."""


@dataclass(frozen=True)
class ServerConfig:
    """WebSocket + HTTP server."""

    host: str = "127.0.0.1"
    """Bind address; a token is required unless every address it resolves to is loopback."""
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
    max_clients: int = 1024
    """Most WebSocket clients at once; more get HTTP 503 (lowered to fit the open-file limit)."""

    def validate(self, path: str) -> None:
        """Range checks and the non-loopback token rule."""
        check(0 <= self.port < 65536, f"{path}.port", "must be in 0..65535", self.port)
        check(self.client_queue_size >= 1, f"{path}.client_queue_size", "must be >= 1",
               self.client_queue_size)
        check(self.max_message_bytes >= 64, f"{path}.max_message_bytes", "must be >= 64",
               self.max_message_bytes)
        check(1 <= self.max_clients <= 1_000_000, f"{path}.max_clients",
              "must be in 1..1000000", self.max_clients)
        check(self.token is None or (bool(self.token.strip()) and
                                     self.token == self.token.strip()), f"{path}.token",
              "must not be blank or start/end with whitespace", "<redacted>")
        check(bool(self.token) or is_loopback(self.host), f"{path}.token",
               f"is required when binding to non-loopback address {self.host!r} "
               f"(set server.token or the {TOKEN_ENV} environment variable)", self.token)


@dataclass(frozen=True)
class WindowConfig:
    """Rolling-window scheduling."""

    hop_seconds: float = 2.0
    """Seconds between classifications (rounded to the front-end's steps: whole BFFT time
    bins, or whole 2.992-s patches for patch-head models)."""
    silence_rms_dbfs: float = SILENCE_RMS_DBFS
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
    """Most sources (each with its due window and work ahead) in one inference batch; when
    more wait, the least recently served go first (round-robin)."""
    runtime: str = "auto"
    """auto: the fastest runtime on this machine that agrees with Keras float32, measured once
    and cached (models/runtime_choice.py; Keras on an NVIDIA GPU); keras; tflite or openvino
    (``genred export``'s file)."""
    num_threads: int | None = None
    """tflite, openvino: threads (null = every core)."""
    precision: str = "auto"
    """auto: float32, or bfloat16 where runtime auto measures it faster and agreeing; keras:
    float32/bfloat16/float16 (mixed policy, weights stay float32); openvino: float32/bfloat16."""

    def validate(self, path: str) -> None:
        """Range checks."""
        check(1 <= self.max_batch_size <= 256, f"{path}.max_batch_size", "must be in 1..256",
               self.max_batch_size)
        check(self.runtime in RUNTIMES, f"{path}.runtime", f"must be one of {list(RUNTIMES)}",
              self.runtime)
        check(self.precision in ("auto", *PRECISIONS), f"{path}.precision",
              f"must be one of {['auto', *PRECISIONS]}", self.precision)
        problem = runtime_precision_error(self.runtime, self.precision.replace("auto",
                                                                               "float32"))
        check(problem is None, f"{path}.precision", str(problem), self.precision)
        check(self.num_threads is None or 1 <= self.num_threads <= 256,
               f"{path}.num_threads", "must be in 1..256 or null", self.num_threads)


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration."""

    model: str = str(DEFAULT_MODEL_DIR)
    """Model artifact folder (relative paths are relative to the config file); default: the
    shipped genred-default inside the installed package."""
    sources: list[SourceConfig] = field(default_factory=list)
    """Audio sources to listen to."""
    server: ServerConfig = field(default_factory=ServerConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    change: ChangeConfig = field(default_factory=ChangeConfig)
    """The change detector's settings, read from ``smoothing.change_*`` (daemon/change.py)."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
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
        if self.mqtt.url:
            check_source_slugs(f"{prefix}sources", names, self.mqtt.topic_prefix)
        for name in ("server", "window", "smoothing", "inference", "history",
                     "mqtt"):
            getattr(self, name).validate(prefix + name)
        self.change.validate(prefix + "smoothing")


def source_config_type(data: Any, path: str) -> tuple[type[SourceConfig], Any]:
    """The config class of a source mapping's ``kind``, and the mapping to build it from.

    Keys of other kinds are dropped with a warning (the flat per-source layout of old
    configs stays loadable); keys no kind knows remain errors.
    """
    check(isinstance(data, dict), path, "must be a mapping", data)
    kind = data.get("kind")
    check(kind is not None, f"{path}.kind", "is required", kind)
    check(isinstance(kind, str) and kind in SOURCE_KINDS, f"{path}.kind",
          f"must be one of {tuple(SOURCE_KINDS)}", kind)
    config_type = SOURCE_KINDS[kind]
    own = {f.name for f in dataclasses.fields(config_type)}
    other = {f.name for t in SOURCE_KINDS.values() for f in dataclasses.fields(t)} - own
    ignored = sorted(set(data) & other)
    if ignored:
        _LOGGER.warning("%s: %s ignored (not used by kind %s)", path, ", ".join(ignored), kind)
    return config_type, {k: v for k, v in data.items() if k not in ignored}


CHANGE_KEYS = tuple(f.name for f in dataclasses.fields(ChangeConfig))
"""Keys of ``smoothing:`` that belong to the change detector."""


def _split_change(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config mapping without the change keys, the change detector's keys)."""
    check(isinstance(data, dict), "config", "must be a mapping", data)
    check("change" not in data, "change", "unknown key (the change detector's keys are "
          "smoothing.change_patches and smoothing.change_probability)", data.get("change"))
    smoothing = data.get("smoothing")
    if not isinstance(smoothing, dict):
        return data, {}
    change = {k: v for k, v in smoothing.items() if k in CHANGE_KEYS}
    rest = {k: v for k, v in smoothing.items() if k not in CHANGE_KEYS}
    return {**data, "smoothing": rest}, change


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Build a Config (not yet validated); relative paths resolve against ``base_dir``."""
    data, change = _split_change(data or {})
    config = build_dataclass(Config, data, "", {SourceConfig: source_config_type})
    config = dataclasses.replace(config, change=build_dataclass(ChangeConfig, change,
                                                                "smoothing"))
    token = config.server.token or os.environ.get(TOKEN_ENV) or None
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, token=token))
    return config if base_dir is None else _resolve_paths(config, base_dir)


def config_from_dict(data: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Build and validate a Config; relative model/file paths resolve against base_dir."""
    config = parse_config(data, base_dir)
    config.validate()
    return config


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    """Make the model, history and local file source paths absolute relative to ``base_dir``."""
    def resolve(text: str) -> str:
        return text if "://" in text or text == "-" or Path(text).is_absolute() \
            else str((base_dir / text).resolve())

    sources = [source.resolve_paths(resolve) for source in config.sources]
    history = config.history
    if history.path and not history.path.startswith("~"):
        history = dataclasses.replace(history, path=resolve(history.path))
    return dataclasses.replace(config, model=resolve(config.model), sources=sources,
                               history=history)


def read_config(path: str | Path) -> Config:
    """Read and parse a YAML config file (not yet validated)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} "
                          f"at offset {error.start})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({one_line(error)[:MAX_ERROR_CHARS]})"
                          ) from None
    return parse_config(data or {}, base_dir=path.parent.resolve())


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a YAML config file."""
    config = read_config(path)
    config.validate()
    return config
