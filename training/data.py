"""Backend-neutral data feeding (keras.utils.PyDataset of slice PNGs) and augmentation."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from training.errors import InputError
from training.manifest import SliceRow

_LOGGER = logging.getLogger(__name__)


def load_png(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A slice PNG as uint8 RGB with the model's input shape, or InputError naming it."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read slice image {path}: {error}") from error
    if array.shape != tuple(shape):
        raise InputError(f"{path}: image shape {array.shape} != model input {tuple(shape)}")
    return array


class SliceImages(keras.utils.PyDataset):
    """Batches (uint8 images, int labels) of manifest rows, read from PNGs on demand."""

    def __init__(self, data_dir: str | Path, rows: list[SliceRow], labels: list[str],
                 batch_size: int = 16, shuffle: bool = False, seed: int = 0,
                 shape: tuple[int, ...] = (224, 224, 3), steps: int | None = None) -> None:
        super().__init__()
        if not rows:
            raise InputError("no slices to feed (empty split)")
        self.data_dir, self.rows, self.shape = Path(data_dir), rows, shape
        index = {label: i for i, label in enumerate(labels)}
        self.targets = np.array([index[row.genre] for row in rows], dtype=np.int32)
        self.batch_size, self.shuffle = batch_size, shuffle
        self._rng = np.random.default_rng(seed)
        self.steps = steps or int(np.ceil(len(rows) / batch_size))
        self._n_per_epoch = steps * batch_size if steps else len(rows)
        self._order = self._new_order()

    def _new_order(self) -> np.ndarray:
        """Row order for one epoch: enough (re)shuffled passes to fill its batches."""
        n_needed = self._n_per_epoch
        passes = []
        while sum(len(p) for p in passes) < n_needed:
            order = np.arange(len(self.rows))
            passes.append(self._rng.permutation(order) if self.shuffle else order)
        return np.concatenate(passes)[:n_needed]

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.steps

    def batch_indices(self, index: int) -> np.ndarray:
        """Row indices of batch ``index``."""
        return self._order[index * self.batch_size:(index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` as (images uint8 (B,224,224,3), labels int32 (B,))."""
        rows = self.batch_indices(index)
        images = np.stack([load_png(self.data_dir / self.rows[i].png, self.shape) for i in rows])
        return images, self.targets[rows]

    def on_epoch_end(self) -> None:
        """Reshuffle between epochs."""
        if self.shuffle:
            self._order = self._new_order()


def augmentation_layers(shift: float, zoom: float, rotation: float,
                        seed: int = 0) -> list[keras.layers.Layer]:
    """Random translation / zoom / rotation layers (a factor of 0 leaves one out)."""
    layers = []
    if shift > 0:
        layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="nearest",
                                                     seed=seed, name="augment_shift"))
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed + 1,
                                              name="augment_zoom"))
    if rotation > 0:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="nearest",
                                                  seed=seed + 2, name="augment_rotation"))
    return layers


def training_wrapper(model: keras.Model, augment: list[keras.layers.Layer]) -> keras.Model:
    """``model`` behind the augmentation layers, for fit only (the saved model has none)."""
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="bfft_image")
    x = keras.ops.cast(inputs, "float32")
    for layer in augment:
        x = layer(x)
    return keras.Model(inputs, model(x), name=f"{model.name}_training")


def predict_probabilities(model: keras.Model, data: SliceImages) -> np.ndarray:
    """Probabilities (n_rows, n_labels) of every row of ``data`` (unshuffled), in row order."""
    if data.shuffle:
        raise ValueError("predict on an unshuffled SliceImages")
    outputs = [np.asarray(model.predict_on_batch(data[i][0])) for i in
               tqdm(range(len(data)), desc="predicting", unit="batch", leave=False)]
    return np.concatenate(outputs)[: len(data.rows)].astype(np.float32)


def describe_device() -> str:
    """The Keras backend and the device it computes on."""
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"tensorflow on {len(gpus)} GPU(s)" if gpus else "tensorflow on CPU"
        if backend == "jax":
            import jax

            return f"jax on {', '.join(str(d) for d in jax.devices())}"
        if backend == "torch":
            import torch

            return "torch on CUDA" if torch.cuda.is_available() else "torch on CPU"
    except Exception as error:  # device probing must never stop training
        _LOGGER.debug("device probe failed: %s", error)
    return f"{backend} (device unknown)"
