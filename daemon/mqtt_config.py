"""MQTT output settings: the config section, its URL (credentials, redaction) and topic names."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from daemon.redact import redact_url
from daemon.schema import check
from daemon.sources.base import BackoffPolicy

USERNAME_ENV = "GENRED_MQTT_USERNAME"
PASSWORD_ENV = "GENRED_MQTT_PASSWORD"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
@dataclass(frozen=True)
class MqttConfig:
    """MQTT output with Home Assistant discovery (config key ``mqtt``)."""

    url: str | None = None
    """mqtt://[user:pass@]host[:port] or mqtts://... (TLS); null = no MQTT."""
    topic_prefix: str = "genred"
    """First level of every genred topic."""
    discovery_prefix: str = "homeassistant"
    """Home Assistant's discovery prefix."""
    retain: bool = True
    """Retain state messages (discovery and availability are always retained)."""
    tls: bool = False
    """Use TLS (mqtts:// turns it on too)."""
    tls_ca_file: str | None = None
    """CA certificates (PEM) to verify the broker with; null = the system's."""
    state_interval_seconds: float = 60.0
    """Longest time between state messages of a source that keeps its label."""
    queue_size: int = 256
    """Messages kept while the broker is unreachable; the oldest are dropped beyond it."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    """Reconnect timing."""

    def validate(self, path: str) -> None:
        """URL form, topic characters and ranges."""
        if self.url is not None:
            parts = urlsplit(self.url)
            check(parts.scheme in DEFAULT_PORTS and bool(parts.hostname), f"{path}.url",
                  "must look like mqtt://host[:port] or mqtts://host[:port] (user and password "
                  "may go before the host, as in any URL)",
                  redact_url(self.url))
            try:
                parts.port  # noqa: B018 (raises on a bad port)
            except ValueError:
                check(False, f"{path}.url", "has an invalid port", redact_url(self.url))
        for key in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, key)
            check(bool(value) and not set(value) & set("+#") and not value.startswith("/")
                  and not value.endswith("/"), f"{path}.{key}",
                  "must be a non-empty topic without + # or a leading/trailing /", value)
        check(self.tls_ca_file is None or os.path.isfile(self.tls_ca_file),
              f"{path}.tls_ca_file", "must be an existing PEM file", self.tls_ca_file)
        check(self.state_interval_seconds > 0, f"{path}.state_interval_seconds", "must be > 0",
              self.state_interval_seconds)
        check(self.queue_size >= 1, f"{path}.queue_size", "must be >= 1", self.queue_size)
        self.backoff.validate(f"{path}.backoff")


def check_source_slugs(path: str, names: Sequence[str], topic_prefix: str) -> None:
    """ConfigError when two source names map to one topic level (and Home Assistant id)."""
    first: dict[str, str] = {}
    for name in names:
        other = first.setdefault(source_slug(name), name)
        check(other == name, path, f"names {other!r} and {name!r} would share the MQTT topic "
              f"{topic_prefix}/{source_slug(name)}/state and Home Assistant unique_id "
              f"genred_{source_slug(name)}; rename one", [other, name])


def source_slug(name: str) -> str:
    """A source name as one topic level / Home Assistant id ([A-Za-z0-9_-])."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def connect_options(config: MqttConfig) -> dict[str, Any]:
    """aiomqtt.Client keyword arguments from the URL, the environment and the TLS keys."""
    assert config.url is not None
    parts = urlsplit(config.url)
    username = unquote(parts.username) if parts.username else os.environ.get(USERNAME_ENV)
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    tls = config.tls or parts.scheme == "mqtts"
    return {"hostname": parts.hostname, "port": parts.port or DEFAULT_PORTS[parts.scheme],
            "username": username or None, "password": password or None,
            "tls_context": ssl.create_default_context(cafile=config.tls_ca_file) if tls
            else None}
