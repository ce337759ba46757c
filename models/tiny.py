"""A tiny CNN model kind ("tiny-cnn") for fast tests and smoke runs; same input as VGG16."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
from keras import layers

_LOGGER = logging.getLogger(__name__)

MODEL_KIND = "tiny-cnn"
IMAGE_SHAPE = (224, 224, 3)


def build_tiny_cnn(labels: list[str] | int, weights: str | Path | None = None,
                   dropout_rate: float = 0.3) -> keras.Model:
    """Rescale, 3 small conv blocks, GlobalMaxPooling, Dropout, Dense softmax (<100k params).

    ``weights``: None / "none" (random) or a full-model ``*.weights.h5`` file.
    """
    n_labels = labels if isinstance(labels, int) else len(labels)
    if n_labels < 2:
        raise ValueError(f"need at least 2 labels, got {n_labels}")
    inputs = keras.Input(shape=IMAGE_SHAPE, name="bfft_image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = layers.AveragePooling2D(2, name="downsample")(x)
    for index, filters in enumerate((16, 32, 48)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                          name=f"conv{index + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="genre")(x)
    model = keras.Model(inputs, outputs, name="tiny_cnn")
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None
    if weights is not None:
        from models.vgg16 import WeightsUnavailableError

        path = Path(weights)
        if weights == "imagenet" or not path.is_file():
            raise WeightsUnavailableError(f"tiny-cnn takes 'none' or a .weights.h5 file, "
                                          f"got {weights!s}")
        model.load_weights(str(path))
    _LOGGER.debug("built tiny CNN for %d labels, %d parameters", n_labels, model.count_params())
    return model
