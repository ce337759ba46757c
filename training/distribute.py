"""Data-parallel training with ``tf.distribute`` (``genred train --data-parallel N``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

_LOGGER = logging.getLogger(__name__)


def mirrored_strategy(replicas: int) -> Any:
    """A MirroredStrategy over ``replicas`` GPUs, else over as many logical CPU devices.

    Logical CPU devices exist to exercise the data-parallel path without GPUs (tests, smoke
    runs); they must be made before TensorFlow initializes its devices.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= replicas:
        devices = [f"/gpu:{index}" for index in range(replicas)]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
        except RuntimeError as error:
            raise RuntimeError(f"--data-parallel {replicas}: TensorFlow was initialized before "
                               f"the CPU could be split ({error})") from None
        devices = [f"/cpu:{index}" for index in range(replicas)]
    strategy = tf.distribute.MirroredStrategy(devices)
    _LOGGER.info("data parallel over %d replicas: %s", strategy.num_replicas_in_sync,
                 ", ".join(devices))
    return strategy


@contextlib.contextmanager
def replica_scope(replicas: int | None) -> Iterator[int]:
    """Build and compile inside this scope; yields the number of replicas (1: no strategy)."""
    if not replicas or replicas <= 1:
        yield 1
        return
    strategy = mirrored_strategy(replicas)
    with strategy.scope():
        yield strategy.num_replicas_in_sync
