"""Run one task per file on a Dask cluster, a local process pool (a Dask LocalCluster) or in
this process; outcomes come back in input order, one progress bar over all files.

A task is a top-level function ``task(item, *args) -> dict``. Each worker process loads a
model once: :func:`worker_model` caches it per process and :class:`ModelPreload` (a Dask
worker plugin) loads it when a worker starts or joins. A worker that dies mid-file loses only
that file: the scheduler runs it again on another worker (up to ``allowed-failures`` times);
an exception in a task is that file's error, reported at the end, and the run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin
from tqdm import tqdm

from training.errors import InputError

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
"""A scheduler that does not answer within this long is an error (one line, exit status 2)."""
LOCAL_HTTP = {"dashboard_address": "127.0.0.1:0"}
"""A local pool's scheduler HTTP address (Dask's default is 8787, shared by every run)."""
_MODELS: dict[tuple[str, str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def worker_model(model_dir: str, runtime: str = "auto", precision: str = "float32",
                 parallel_calls: int = 1) -> Any:
    """The LoadedModel of ``model_dir`` for ``runtime``, ``precision`` and ``parallel_calls``
    (models.loader.load_model), loaded once per process (thread-safe)."""
    key = (model_dir, runtime, precision, parallel_calls)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from models.loader import load_model

            loaded = load_model(Path(model_dir), runtime, precision=precision,
                                parallel_calls=parallel_calls)
            _MODELS[key] = loaded
            _LOGGER.info("process %d loaded %s (%s)", os.getpid(), model_dir,
                         loaded.predictor.describe())
        return _MODELS[key]


class ModelPreload(WorkerPlugin):
    """Dask worker plugin: load the model when a worker starts (and on workers joining later)."""

    name = "genred-model"

    def __init__(self, model_dir: str, runtime: str = "auto",
                 precision: str = "float32") -> None:
        self.model_dir = model_dir
        """Model folder, as the workers see it."""
        self.runtime = runtime
        """Runtime the tasks ask for (models.loader.RUNTIMES)."""
        self.precision = precision
        """Keras compute precision the tasks ask for (models.precision.PRECISIONS)."""

    def setup(self, worker: Any) -> None:
        """Load the model into the worker process's cache."""
        worker_model(self.model_dir, self.runtime, self.precision)


@dataclass
class Outcome:
    """The result of one item, or the error that stopped it."""

    index: int
    item: Any
    result: dict | None = None
    error: str | None = None


def connect(cluster: str) -> Client:
    """A client of the Dask scheduler at ``cluster``; InputError when it cannot be reached."""
    try:
        return Client(cluster, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, ValueError, TypeError) as error:  # refused, timed out, not an address
        raise InputError(f"--cluster {cluster!r}: no Dask scheduler reached "
                         f"(expected tcp://HOST:PORT): {error}") from None


@contextlib.contextmanager
def open_client(cluster: str | None, workers: int,
                memory_limit: str = "auto") -> Iterator[Client | None]:
    """A Dask client for ``cluster`` (a scheduler address), else a LocalCluster of
    ``workers`` single-thread processes; None when one worker is asked (run in this process)."""
    if cluster is None and workers <= 1:
        yield None
        return
    if cluster is not None:
        with connect(cluster) as client:
            _LOGGER.info("connected to %s: %d workers", cluster,
                         len(client.scheduler_info()["workers"]))
            yield client
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))  # TensorFlow's pools, per worker
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": threads}
    # no dashboard; the scheduler's HTTP server (always started) on any free loopback port,
    # not 8787: two local pools at once do not warn about the port
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, scheduler_kwargs=LOCAL_HTTP,
                      memory_limit=memory_limit, env=env) as local, \
            Client(local) as client:
        _LOGGER.info("local pool: %d worker processes", workers)
        yield client


def run_tasks(client: Client | None, task: Callable[..., dict], items: Sequence[Any],
              args: tuple = (), plugin: WorkerPlugin | None = None,
              desc: str = "files",
              fatal: tuple[type[Exception], ...] = ()) -> Iterator[Outcome]:
    """Outcomes of ``task(item, *args)`` for every item, in input order, with one bar.

    An exception of a ``fatal`` type (a model that does not load: every item would fail
    alike) stops the run and is raised, instead of becoming the item's error.
    """
    bar = tqdm(total=len(items), desc=desc, unit="file", smoothing=0.1, disable=len(items) < 2)
    try:
        if client is None:
            for index, item in enumerate(items):
                outcome = _run_here(task, index, item, args, fatal)
                bar.update()
                yield outcome
            return
        yield from _run_on(client, task, items, args, plugin, bar, fatal)
    finally:
        bar.close()


def _run_here(task: Callable[..., dict], index: int, item: str, args: tuple,
              fatal: tuple[type[Exception], ...]) -> Outcome:
    """One task in this process; an exception (unless ``fatal``) becomes the item's error."""
    try:
        return Outcome(index, item, result=task(item, *args))
    except fatal:
        raise
    except Exception as error:  # noqa: BLE001 - any failure is this file's, the run goes on
        _LOGGER.debug("task failed on %s", item, exc_info=True)
        return Outcome(index, item, error=f"{type(error).__name__}: {error}")


def _run_on(client: Client, task: Callable[..., dict], items: Sequence[Any], args: tuple,
            plugin: WorkerPlugin | None, bar: tqdm,
            fatal: tuple[type[Exception], ...]) -> Iterator[Outcome]:
    """Submit every item; yield outcomes in input order as soon as each one's turn comes."""
    if plugin is not None:
        client.register_plugin(plugin)
    prefix = f"genred-{task.__name__}-{os.getpid()}-{time.monotonic_ns()}"
    futures = {client.submit(task, item, *args, pure=False, key=f"{prefix}-{i}"): i
               for i, item in enumerate(items)}
    done: dict[int, Outcome] = {}
    next_index, started = 0, time.monotonic()
    for future in as_completed(futures):
        index = futures.pop(future)
        try:
            done[index] = Outcome(index, items[index], result=future.result())
        except fatal:
            raise
        except Exception as error:  # noqa: BLE001 - a lost or failing task is this file's
            done[index] = Outcome(index, items[index], error=f"{type(error).__name__}: {error}")
        future.release()
        bar.update()
        while next_index in done:
            yield done.pop(next_index)
            next_index += 1
    _LOGGER.debug("%d items in %.1f s", len(items), time.monotonic() - started)
