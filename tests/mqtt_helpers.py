"""A real mosquitto broker for tests, and an aiomqtt subscriber that collects messages."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import aiomqtt

from daemon.harness import free_port, stop_process


class PortTaken(Exception):
    """The broker's port was taken between choosing it and binding it."""


class Broker:
    """mosquitto on 127.0.0.1:port with a generated config (no persistence); restartable."""

    def __init__(self, folder: Path, extra_config: str = "") -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/dev setup installs it)")
        self.binary, self.folder, self.extra_config = binary, folder, extra_config
        self.config_path = folder / "mosquitto.conf"
        self.log_path = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0

    def _write_config(self) -> None:
        """mosquitto cannot bind port 0 and say which: a port free a moment ago."""
        self.port = free_port()
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\npersistence false\nuser {getpass.getuser()}\n"
            f"{self.extra_config or 'allow_anonymous true'}\n")

    def start(self, timeout_seconds: float = 10.0) -> Broker:
        """Start it (a restart keeps its port) and wait until the port accepts connections.

        The first start picks another port when another process took the chosen one meanwhile.
        """
        for _ in range(5 if self.starts == 0 else 1):
            if self.starts == 0:
                self._write_config()
            try:
                return self._start_once(timeout_seconds)
            except PortTaken:
                continue
        raise RuntimeError(f"mosquitto found no free port: {self.log_path.read_text()}")

    def _start_once(self, timeout_seconds: float) -> Broker:
        """One start on ``self.port``, ready when its log says running; PortTaken if in use."""
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config_path)],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_seconds
        while True:
            text = self.log_path.read_bytes()[log_offset:].decode(errors="replace")
            if "Address already in use" in text and self.starts == 0:
                stop_process(self.process)
                raise PortTaken(self.port)
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {text}")
            if " running" in text:  # "mosquitto version 2.0.11 running": listening
                socket.create_connection(("127.0.0.1", self.port), 2).close()
                self.starts += 1
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start listening: {text}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; bounded in time."""
        stop_process(self.process)
        self.process = None

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:PORT"""
        return f"mqtt://127.0.0.1:{self.port}"


def make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl): (certificate, key, the same as CA)."""
    cert, key = folder / "broker.crt", folder / "broker.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key, cert


async def collect(port: int, topics: list[str], until, timeout_seconds: float = 15.0,
                  subscribed: asyncio.Event | None = None, **client_options) -> dict[str, list]:
    """Subscribe to ``topics``; topic -> [(payload, retained)] until ``until(seen)`` is true.

    ``subscribed`` is set once the broker acknowledged every subscription (its SUBACK).
    """
    seen: dict[str, list] = {}

    async def run() -> None:
        async with aiomqtt.Client("127.0.0.1", port, **client_options) as client:
            for topic in topics:
                await client.subscribe(topic)  # returns on the broker's SUBACK
            if subscribed is not None:
                subscribed.set()
            async for message in client.messages:
                payload = message.payload.decode()
                if payload.startswith("{"):
                    payload = json.loads(payload)
                seen.setdefault(str(message.topic), []).append((payload, message.retain))
                if until(seen):
                    return

    await asyncio.wait_for(run(), timeout_seconds)
    return seen
