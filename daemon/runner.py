"""Start-up of the daemon: load the model, build sources, bind the server, run until a signal."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from daemon.config import Config
from daemon.service import ModelHandle, Service
from daemon.sources import SourceConfigError
from models.contract import ArtifactError
from models.loader import load_model
from models.serving import serving_for

_LOGGER = logging.getLogger(__name__)


class StartupError(Exception):
    """The daemon cannot start (missing model, unknown device, port in use...)."""


def load_model_handle(folder: str, runtime: str = "keras",
                      num_threads: int | None = None) -> ModelHandle:
    """Load and check the artifact, or raise StartupError with the artifact's message.

    ``runtime``: "keras" (the artifact's Keras model) or "tflite" (its ``genred export``
    TFLite file, run with ``num_threads`` threads; None = every core).
    """
    started = time.monotonic()
    try:
        loaded = load_model(folder, runtime, num_threads)
    except ArtifactError as error:
        raise StartupError(f"model: {error}") from error
    contract = loaded.contract
    _LOGGER.info("loaded model %s (%s, %d labels) from %s in %.1f s; inference on %s",
                 contract.name, contract.model_kind, len(contract.labels), folder,
                 time.monotonic() - started, loaded.predictor.describe())
    serving = serving_for(loaded)
    return ModelHandle(name=contract.name, labels=contract.labels,
                       new_extractor=serving.new_extractor, predict_batch=serving.predict,
                       collate=serving.collate)


async def run_daemon(config: Config, install_signals: Callable[[asyncio.Event], None],
                     model: ModelHandle | None = None) -> int:
    """Run the daemon until ``install_signals``' event is set; returns the exit status."""
    model = model or load_model_handle(config.model, config.inference.runtime,
                                       config.inference.num_threads)
    service = Service(config, model)
    try:
        service.create_sources()
    except SourceConfigError as error:
        raise StartupError(f"source: {error}") from error
    try:
        await service.start_server()
    except OSError as error:
        raise StartupError(f"cannot listen on {config.server.host}:{config.server.port}: "
                           f"{error.strerror or error}") from error
    stop = asyncio.Event()
    install_signals(stop)
    await service.run(stop)
    _LOGGER.info("stopped")
    return 0
