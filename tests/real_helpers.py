"""Helpers of the tests against real components: the daemon as a subprocess, a WebSocket
collector, PulseAudio and icecast2 servers run as user processes, a spectral test model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from daemon.harness import DaemonProcess, stop_process

SPECTRAL_LABELS = ("low", "high")
HELPER_PROCESSES = ("pulseaudio", "icecast2", "ffmpeg", "chromium")


def require_command(name: str) -> str:
    """Path of a command the tests need; fail (not skip) when scripts/dev did not install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/dev test installs it)")
    return path


def write_config(path: Path, model: Path, port: int, sources: list[dict],
                 **sections: Any) -> Path:
    """A daemon config.yaml; ``sections`` are merged on top (server keys merge too)."""
    import yaml

    server = {"port": port, **sections.pop("server", {})}
    data = {"model": str(model), "server": server, "sources": sources, **sections}
    path.write_text(yaml.safe_dump(data))
    return path


def start_ffmpeg(*args: str, env: dict[str, str] | None = None,
                 log: Path | None = None) -> subprocess.Popen:
    """ffmpeg with ``args`` (no stdin; output to ``log`` or discarded; ``env`` added)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
                                 *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env={**os.environ, **(env or {})})
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


# --- the daemon as a subprocess -----------------------------------------------------------

@contextlib.contextmanager
def daemon_process(config: Path, log_path: Path, env: dict[str, str] | None = None,
                   fake_model: bool = False) -> Iterator[DaemonProcess]:
    """Start the daemon; always stop it; fail on a Traceback in its log or a bad exit."""
    daemon = DaemonProcess(config, log_path, env or {}, fake_model=fake_model).start()
    try:
        yield daemon
    finally:
        status = daemon.stop()
        log = daemon.log()
        assert "Traceback" not in log, log
        assert status == 0, f"daemon exit status {status}:\n{log}"


# --- a WebSocket client that records everything -----------------------------------------------

@dataclass
class Received:
    """One message, when it arrived (monotonic seconds) and its position."""

    at: float
    message: dict
    index: int


class Collector:
    """Reads every message of one WebSocket connection in the background."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._ws: Any = None

    async def open(self, url: str, timeout_seconds: float = 10.0, **kwargs: Any) -> Collector:
        self._ws = await asyncio.wait_for(websockets.connect(url, **kwargs), timeout_seconds)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self._ws:
                self.received.append(Received(time.monotonic(), json.loads(text),
                                              len(self.received)))
                self._changed.set()

    async def wait_for(self, predicate: Callable[[dict], bool], timeout_seconds: float,
                       since: int = 0) -> Received:
        """The first message from index ``since`` on that satisfies ``predicate``."""
        async def scan() -> Received:
            index = since
            while True:
                while index < len(self.received):
                    if predicate(self.received[index].message):
                        return self.received[index]
                    index += 1
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout_seconds)
        except TimeoutError:
            tail = [r.message for r in self.received[-8:]]
            pytest.fail(f"no matching message in {timeout_seconds} s; last: {tail}")

    def states(self, source: str) -> list[str]:
        return [r.message["state"] for r in self.received
                if r.message["type"] == "status" and r.message["source"] == source]

    async def close(self) -> None:
        if self._ws is not None:
            await asyncio.wait_for(self._ws.close(), 5)
        if self._task is not None:
            await asyncio.wait_for(self._task, 5)


def is_prediction(source: str) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "prediction" and m["source"] == source


def is_state(source: str, *states: str) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "status" and m["source"] == source and m["state"] in states


# --- PulseAudio with a null sink ----------------------------------------------------------

class PulseAudio:
    """A PulseAudio server as a user process with a null sink ``genred_sink``."""

    SINK = "genred_sink"

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        client_conf = runtime_dir / "client.conf"
        client_conf.write_text("autospawn = no\n")
        self.env = {"XDG_RUNTIME_DIR": str(runtime_dir), "PULSE_CLIENTCONFIG": str(client_conf),
                    "PULSE_SOURCE": f"{self.SINK}.monitor", "PULSE_SINK": self.SINK,
                    "HOME": str(runtime_dir)}
        self.process: subprocess.Popen | None = None

    def _run(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        return subprocess.run(args, env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        """Start the server as a child process (not daemonized: we reap it) and wait for it."""
        log = self.runtime_dir / "pulseaudio.log"
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
                 "--load=module-native-protocol-unix",
                 f"--load=module-null-sink sink_name={self.SINK}", "--load=module-always-sink"],
                env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 15
        while self._run("pactl", "info").returncode != 0:
            if self.process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("pulseaudio does not answer pactl info")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


# --- icecast2 on loopback -----------------------------------------------------------------

class Icecast:
    """icecast2 from a copy of Debian's config: own port, passwords and log folder."""

    MOUNT = "/live.mp3"

    def __init__(self, work_dir: Path, port: int, password: str = "genred-source") -> None:
        self.port, self.password = port, password
        # icecast drops to nobody/nogroup when started as root: its logdir must be writable
        # and reachable by them, which pytest's 0700 tmp folders are not.
        self.log_dir = Path(tempfile.mkdtemp(prefix="genred-icecast-"))
        self.log_dir.chmod(0o777)
        self.config_path = work_dir / "icecast.xml"
        self.config_path.write_text(self._config_text())
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.MOUNT}"

    @property
    def source_url(self) -> str:
        return f"icecast://source:{self.password}@127.0.0.1:{self.port}{self.MOUNT}"

    def _config_text(self) -> str:
        text = Path("/etc/icecast2/icecast.xml").read_text()
        text = text.replace("<port>8000</port>", f"<port>{self.port}</port>", 1)
        text = text.replace("<!-- <bind-address>127.0.0.1</bind-address> -->",
                            "<bind-address>127.0.0.1</bind-address>", 1)
        text = re.sub(r"<(source|relay|admin)-password>[^<]*<",
                      rf"<\1-password>{self.password}<", text)
        text = re.sub(r"<logdir>[^<]*</logdir>", f"<logdir>{self.log_dir}</logdir>", text)
        if os.geteuid() == 0:  # icecast2 refuses to run as root without changeowner
            text = re.sub(r"<!--\s*(<changeowner>.*?</changeowner>)\s*-->", r"\1", text,
                          flags=re.S)
        return text

    def start(self, timeout_seconds: float = 15.0) -> None:
        self.process = subprocess.Popen(
            ["icecast2", "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"icecast2 exited with {self.process.returncode}: "
                                   f"{self.error_log()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), 0.5):
                return
            time.sleep(0.1)
        raise RuntimeError("icecast2 did not listen in time")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def error_log(self) -> str:
        path = self.log_dir / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.is_file() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.log_dir, ignore_errors=True)


# --- processes and memory -----------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def descendants(pid: int) -> set[int]:
    """All live descendants of ``pid`` (from /proc/*/stat parent links)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def helper_processes_started_by(marker: str) -> list[str]:
    """Command lines of pulseaudio/icecast2/ffmpeg/chromium processes mentioning ``marker``."""
    result = subprocess.run(["pgrep", "-a", "-f", "|".join(HELPER_PROCESSES)],
                            capture_output=True, text=True, timeout=10)
    return [line for line in result.stdout.splitlines() if marker in line]


# --- a model whose output depends on the spectrum -------------------------------------------

def build_spectral_artifact(folder: Path, name: str = "test-spectral") -> Path:
    """A Keras artifact, weights set by hand: "high" when loud rows sit in the upper half.

    Per-row time average of the BFFT image -> Dense(2, softmax) whose weight on a row's
    green level (green = loud) grows linearly with the row's frequency. Loaded by the
    daemon through the normal artifact path (model.keras + contract.json).
    """
    import keras
    import numpy as np
    from keras import layers

    from models.artifact import contract_for, save_artifact
    from models.tiny import IMAGE_SHAPE, MODEL_KIND

    height = IMAGE_SHAPE[0]
    inputs = keras.Input(shape=IMAGE_SHAPE, name="bfft_image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = layers.AveragePooling2D(pool_size=(1, IMAGE_SHAPE[1]), name="time_mean")(x)
    x = layers.Flatten(name="rows")(x)
    outputs = layers.Dense(len(SPECTRAL_LABELS), activation="softmax", name="genre")(x)
    model = keras.Model(inputs, outputs, name="spectral")
    rank = (height - 1 - np.arange(height)) / (height - 1) * 2.0 - 1.0  # top row = +1
    kernel = np.zeros((height * 3, 2), np.float32)
    kernel[1::3, 1] = 0.25 * rank     # green channel of each row -> "high"
    kernel[1::3, 0] = -0.25 * rank
    model.get_layer("genre").set_weights([kernel, np.zeros(2, np.float32)])
    contract = contract_for(name, MODEL_KIND, list(SPECTRAL_LABELS), IMAGE_SHAPE,
                            training={"note": "hand-set weights: spectral centroid, tests"})
    return save_artifact(model, folder, contract)


def render_pcm(clip: Path, seconds: float, audio_filter: str | None = None) -> bytes:
    """``seconds`` of ``clip`` (looped if shorter) as 44.1 kHz mono s16le."""
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-stream_loop", "-1",
            "-i", str(clip), "-t", str(seconds), "-ac", "1", "-ar", "44100"]
    if audio_filter:
        args += ["-af", audio_filter]
    result = subprocess.run([*args, "-f", "s16le", "-"], capture_output=True, check=True,
                            timeout=120)
    return result.stdout
