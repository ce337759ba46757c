"""Training callbacks: tqdm progress, training-time measurement, run logs under runs/<name>/."""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import keras
from tqdm import tqdm

_LOGGER = logging.getLogger(__name__)


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar over all training batches, with the latest metrics as postfix."""

    def __init__(self, epochs: int, steps_per_epoch: int) -> None:
        super().__init__()
        self._total = epochs * steps_per_epoch
        self._bar: tqdm | None = None
        self._epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102 - Keras API
        self._bar = tqdm(total=self._total, desc="training", unit="batch")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        if self._bar is not None:
            self._bar.update()
            self._bar.set_postfix(epoch=self._epoch, **_short(logs))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # noqa: D102
        _LOGGER.info("epoch %d: %s", epoch + 1,
                     ", ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())))

    def on_train_end(self, logs: dict | None = None) -> None:  # noqa: D102
        if self._bar is not None:
            self._bar.close()


def _short(logs: dict | None) -> dict[str, str]:
    """Metrics formatted for a progress bar."""
    return {key: f"{float(value):.3f}" for key, value in (logs or {}).items()}


class TrainingTimer(keras.callbacks.Callback):
    """Seconds spent in training batches (the first batch, which compiles, is left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_seconds: list[float] = []
        self._started = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102
        self.batch_seconds.append(time.perf_counter() - self._started)

    def seconds_per_image(self, batch_size: int) -> float | None:
        """Mean training seconds per image over the timed batches."""
        timed = self.batch_seconds[1:] or self.batch_seconds
        return sum(timed) / (len(timed) * batch_size) if timed else None


def run_callbacks(run_dir: Path, monitor: str, patience: int) -> list[keras.callbacks.Callback]:
    """Early stopping, best checkpoint, CSV log and (if installed) TensorBoard in ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                      restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.weights.h5"), monitor=monitor,
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
    ]
    if importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    else:
        _LOGGER.info("tensorboard is not installed; no TensorBoard logs")
    return callbacks
