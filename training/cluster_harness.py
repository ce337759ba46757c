"""A real Dask scheduler and workers on loopback (``dask`` CLI processes), for tests and
benchmarks, as :mod:`daemon.harness` is for the daemon."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""This checkout: first on the PYTHONPATH of every process started here."""
DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT_SECONDS = 90.0


def free_port() -> int:
    """A TCP port free on loopback now (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env() -> dict[str, str]:
    """Environment for scheduler, workers and genred subprocesses: this checkout first."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


class DaskCluster:
    """``dask scheduler`` and ``dask worker`` processes (each in its own process group)."""

    def __init__(self, log_dir: Path, n_workers: int = 2) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.n_workers = n_workers
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        """Start ``dask ARGS`` logging to LOG_DIR/NAME.log, in a new process group."""
        log = (self.log_dir / f"{name}.log").open("wb")
        return subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT,
                                env=child_env(), cwd=self.log_dir, start_new_session=True)

    def start(self) -> None:
        """Scheduler, then workers; returns once every worker has joined."""
        from distributed import Client

        self.scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1",
                                     "--port", str(self.port), "--no-dashboard")
        for index in range(self.n_workers):
            self.workers.append(self._spawn(
                f"worker{index}", "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                "--no-dashboard", "--memory-limit", "2GiB", "--host", "127.0.0.1",
                "--name", f"w{index}", "--death-timeout", "60"))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(self.n_workers, timeout=START_TIMEOUT_SECONDS)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker's whole process group (nanny and worker: a lost machine)."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(timeout=10)

    def stop(self) -> None:
        """Stop every process this cluster started."""
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextlib.contextmanager
def dask_cluster(log_dir: Path, n_workers: int = 2) -> Iterator[DaskCluster]:
    """A started :class:`DaskCluster`, stopped on exit."""
    cluster = DaskCluster(log_dir, n_workers)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
