"""Run and probe a genred daemon: the one harness of the tests and the benchmarks.

A free port, an HTTP GET, /metrics read with prometheus_client's parser, a fake model
(numpy, no TensorFlow) and the daemon as a subprocess. ``python -m daemon.harness CONFIG``
runs the daemon with the fake model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from daemon.service import ModelHandle
from models.bfft import DEFAULT_PARAMS
from models.features import BfftExtractor
from models.serving import FunctionServing

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_LABELS = ("low", "mid", "high")
LISTENING = re.compile(r"publisher listening on http://\S+:(\d+)/")
"""The daemon's log line naming the port it bound (``server.port: 0`` binds any free one)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (racy: prefer port 0 and :meth:`bound_port`)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout_seconds: float = 10.0) -> str:
    """GET http://127.0.0.1:PORT/PATH as text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", None,
                                timeout_seconds) as response:
        return response.read().decode()


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> sample name -> [(labels, value)] (prometheus_client's parser)."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def metric(text: str, name: str) -> float:
    """Sum of every sample of metric ``name`` (all label sets) in Prometheus text."""
    return sum(value for _, value in metric_samples(text).get(name, []))


def fake_predict(images: np.ndarray) -> np.ndarray:
    """Probabilities from where the image's energy sits (rows: top = high frequency)."""
    energy = images[..., 1].astype(np.float64)  # green: the loudest half of the range
    thirds = np.stack([energy[:, 150:].mean((1, 2)), energy[:, 75:150].mean((1, 2)),
                       energy[:, :75].mean((1, 2))], axis=1) + 1e-3
    return (thirds / thirds.sum(axis=1, keepdims=True)).astype(np.float32)


def fake_model() -> ModelHandle:
    """A ModelHandle with the real BFFT front-end and a numpy 'model'."""
    return ModelHandle(name="fake", labels=FAKE_LABELS, serving=FunctionServing(
        lambda: BfftExtractor(DEFAULT_PARAMS), fake_predict))


class DaemonError(RuntimeError):
    """The daemon exited or did not answer; the message carries its log."""


@dataclass
class DaemonProcess:
    """``python -m daemon run --config CONFIG`` (or the fake-model daemon), output to a log."""

    config: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    fake_model: bool = False
    """Run with fake_model() (numpy, no TensorFlow) instead of the config's artifact."""
    command: Sequence[str] | None = None
    """Another command line to run (``--config CONFIG`` is appended)."""
    process: subprocess.Popen | None = None

    def start(self) -> DaemonProcess:
        """Start the process (cwd: the repository)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
        if self.command is not None:
            argv = [*self.command, "--config", str(self.config)]
        elif self.fake_model:
            argv = [sys.executable, "-m", "daemon.harness", str(self.config)]
        else:
            argv = [sys.executable, "-m", "daemon", "run", "--config", str(self.config)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        """Process id."""
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        """Everything the daemon wrote so far."""
        return self.log_path.read_text(errors="replace")

    def is_ready(self, port: int) -> bool:
        """Whether /healthz answers; DaemonError if the daemon has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise DaemonError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
        with contextlib.suppress(OSError):
            http_get(port, "/healthz", 2)
            return True
        return False

    def bound_port_blocking(self, timeout_seconds: float = 120.0) -> int:
        """The port the daemon bound, from its log (for ``--port 0``; DaemonError on exit)."""
        deadline = time.monotonic() + timeout_seconds
        while (found := LISTENING.search(self.log())) is None:
            if self.process is not None and self.process.poll() is not None:
                raise DaemonError(f"daemon exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise DaemonError(f"daemon bound no port in {timeout_seconds} s:\n{self.log()}")
            time.sleep(0.1)
        return int(found.group(1))

    async def bound_port(self, timeout_seconds: float = 120.0) -> int:
        """:meth:`bound_port_blocking` from an event loop."""
        return await asyncio.to_thread(self.bound_port_blocking, timeout_seconds)

    def wait_ready_blocking(self, port: int, timeout_seconds: float = 120.0) -> None:
        """Poll /healthz until it answers (DaemonError on exit or timeout)."""
        deadline = time.monotonic() + timeout_seconds
        while not self.is_ready(port):
            if time.monotonic() > deadline:
                raise DaemonError(f"daemon did not answer /healthz in {timeout_seconds} s:\n"
                                  f"{self.log()}")
            time.sleep(0.25)

    async def wait_ready(self, port: int, timeout_seconds: float = 120.0) -> None:
        """Poll /healthz from an event loop until it answers (DaemonError on exit/timeout)."""
        await asyncio.to_thread(self.wait_ready_blocking, port, timeout_seconds)

    def stop(self, timeout_seconds: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_seconds``; returns the exit status."""
        return stop_process(self.process, timeout_seconds)


def stop_process(process: subprocess.Popen | None, timeout_seconds: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout_seconds``; returns the exit status."""
    if process is None:
        return None
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_seconds)
    return process.returncode


def run_fake_model_daemon(config_path: str) -> int:
    """`genred run` with fake_model() instead of an artifact."""
    from daemon.cli import configure_logging, install_signal_handlers
    from daemon.config import load_config
    from daemon.runner import run_daemon

    config = load_config(config_path)
    configure_logging(config.log_level)
    return asyncio.run(run_daemon(config, install_signal_handlers, model=fake_model()))


if __name__ == "__main__":
    sys.exit(run_fake_model_daemon(sys.argv[1]))
