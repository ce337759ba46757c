"""Start-up of the daemon: load the model, build sources, bind the server, run until a signal."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from daemon.assembly import build_service
from daemon.config import Config
from daemon.service import ModelHandle
from daemon.sources import SourceConfigError
from models.contract import ArtifactError
from models.errors import GenredError
from models.loader import load_model
from models.runtime_choice import choose_runtime
from models.serving import serving_for

_LOGGER = logging.getLogger(__name__)


class StartupError(GenredError):
    """The daemon cannot start (missing model, unknown device, port in use...)."""


def load_model_handle(folder: str, runtime: str = "keras", num_threads: int | None = None,
                      precision: str = "float32") -> ModelHandle:
    """Load and check the artifact, or raise StartupError with the artifact's message.

    ``runtime``: "keras" (the artifact's Keras model, computing in ``precision``), "tflite" or
    "openvino" (its ``genred export`` TFLite file, run with ``num_threads`` threads; None =
    every core) or "auto" (with ``precision`` "auto": chosen by measurement,
    models/runtime_choice.py).
    """
    started = time.monotonic()
    try:
        choice = choose_runtime(folder, runtime, precision, num_threads)
        threads = num_threads if choice.threads is None else choice.threads
        loaded = load_model(folder, choice.runtime, threads, choice.precision)
    except ArtifactError as error:
        raise StartupError(f"model: {error}") from error
    contract = loaded.contract
    _LOGGER.info("loaded model %s (%s, %d labels) from %s in %.1f s; inference on %s "
                 "(runtime %s: %s)", contract.name, contract.model_kind, len(contract.labels),
                 folder, time.monotonic() - started, loaded.predictor.describe(), runtime,
                 choice.reason)
    inference = {**choice.health(), "runs_on": loaded.predictor.describe()}
    return ModelHandle(name=contract.name, labels=contract.labels, serving=serving_for(loaded),
                       inference=inference)


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """OS errors asyncio reports (e.g. accept() hitting the open-file limit): one line."""
    error = context.get("exception")
    if isinstance(error, OSError):
        _LOGGER.error("%s: %s", context.get("message", "event loop error"), error)
    else:
        loop.default_exception_handler(context)


class StoppedDuringLoad(Exception):
    """A stop signal came while the model was loading (the loading thread is abandoned)."""


async def _load_until_stopped(config: Config, stop: asyncio.Event) -> ModelHandle:
    """Load the model on a daemon thread; StoppedDuringLoad if ``stop`` is set first."""
    loop = asyncio.get_running_loop()
    loaded: asyncio.Future[ModelHandle] = loop.create_future()

    def load() -> None:
        try:
            handle = load_model_handle(config.model, config.inference.runtime,
                                       config.inference.num_threads,
                                       config.inference.precision)
        except BaseException as error:  # handed to the event loop, raised there
            loop.call_soon_threadsafe(_settle, loaded, None, error)
        else:
            loop.call_soon_threadsafe(_settle, loaded, handle, None)

    _LOGGER.info("loading model from %s", config.model)
    threading.Thread(target=load, name="model-load", daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([loaded, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not loaded.done():
        raise StoppedDuringLoad()
    return loaded.result()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Complete ``future`` unless it was cancelled."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def run_daemon(config: Config, install_signals: Callable[[asyncio.Event], None],
                     model: ModelHandle | None = None, **options: Any) -> int:
    """Run the daemon until ``install_signals``' event is set; returns the exit status.

    The signals are installed first: a stop while the model loads raises StoppedDuringLoad.
    """
    asyncio.get_running_loop().set_exception_handler(_loop_exception)
    stop = asyncio.Event()
    install_signals(stop)
    model = model or await _load_until_stopped(config, stop)
    service = build_service(config, model, **options)
    try:
        service.create_sources()
    except SourceConfigError as error:
        raise StartupError(f"source: {error}") from error
    try:
        await service.start_server()
    except OSError as error:
        raise StartupError(f"cannot listen on {config.server.host}:{config.server.port}: "
                           f"{error.strerror or error}; choose another port with --port "
                           f"(or server.port in the config; 0 = any free)") from error
    await service.run(stop)
    _LOGGER.info("stopped")
    return 0
