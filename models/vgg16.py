"""The report's model: Keras VGG16 base, GlobalMaxPooling2D, Dropout(0.3), Dense softmax.

The VGG16 input preprocessing (RGB -> BGR, ImageNet channel means subtracted) is a layer
inside the graph, so a saved model takes the front-end's uint8 images as they are.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import keras
from keras import layers, ops

from models.errors import GenredError

_LOGGER = logging.getLogger(__name__)

MODEL_KIND = "vgg16-bfft"
IMAGE_SHAPE = (224, 224, 3)
IMAGENET_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_NOTOP_FILE
)
_BGR_MEANS = (103.939, 116.779, 123.68)
_DOWNLOAD_PROBE_SECONDS = 5.0


class WeightsUnavailableError(GenredError, RuntimeError):
    """Raised when requested pre-trained weights are neither cached nor downloadable."""


@keras.saving.register_keras_serializable(package="genred")
class VggPreprocess(layers.Layer):
    """keras.applications.vgg16.preprocess_input as a layer: RGB 0..255 -> BGR minus means."""

    def call(self, images):  # noqa: D102 - Keras API
        images = ops.cast(images, "float32")
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(_BGR_MEANS, dtype="float32")


def keras_cache_dir() -> Path:
    """Folder where Keras caches downloaded weights (KERAS_HOME or ~/.keras)/models."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def _can_reach(host: str, port: int = 443) -> bool:
    """True when a TCP connection to host:port opens within a few seconds."""
    try:
        with socket.create_connection((host, port), timeout=_DOWNLOAD_PROBE_SECONDS):
            return True
    except OSError:
        return False


def ensure_imagenet_weights() -> None:
    """Fail early, with the fix, when ImageNet weights are not cached and the host is offline."""
    cached = keras_cache_dir() / IMAGENET_NOTOP_FILE
    if cached.is_file():
        return
    if not _can_reach("storage.googleapis.com"):
        raise WeightsUnavailableError(
            "VGG16 ImageNet weights are not cached and cannot be downloaded (no network). "
            f"On a connected machine download {IMAGENET_NOTOP_URL} and place it at {cached} "
            "(or set KERAS_HOME), or use weights 'none' or a weights file path."
        )


def _vgg16_base(weights: str | Path | None) -> keras.Model:
    """The VGG16 convolutional base with the requested initial weights."""
    if weights == "imagenet":
        ensure_imagenet_weights()
        return keras.applications.VGG16(include_top=False, weights="imagenet",
                                        input_shape=IMAGE_SHAPE)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=IMAGE_SHAPE)
    if weights is not None and not str(weights).endswith(".weights.h5"):
        _load_weights_file(base, Path(weights))
    return base


def _load_weights_file(model: keras.Model, path: Path) -> None:
    """Load a weights file into ``model`` with an error naming the file."""
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {path}")
    try:
        model.load_weights(str(path))
    except Exception as error:  # Keras raises many types for a bad file
        raise WeightsUnavailableError(f"cannot load weights from {path}: {error}") from error


def build_vgg16(
    labels: list[str] | int,
    weights: str | Path | None = None,
    dropout_rate: float = 0.3,
) -> keras.Model:
    """Build the report's classifier for ``labels`` (names or a count).

    ``weights``: "imagenet" (the VGG16 base starts from ImageNet; fails offline with the
    file to place), None / "none" (random), or a path: a full-model ``*.weights.h5`` saved
    by genred, or a VGG16 no-top weights file (Keras' ``.h5``) for the base.
    """
    n_labels = labels if isinstance(labels, int) else len(labels)
    if n_labels < 2:
        raise ValueError(f"need at least 2 labels, got {n_labels}")
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None
    base = _vgg16_base(weights)
    base.trainable = True
    inputs = keras.Input(shape=IMAGE_SHAPE, name="bfft_image")
    features = base(VggPreprocess(name="vgg16_preprocess")(inputs))
    pooled = layers.GlobalMaxPooling2D(name="global_max_pool")(features)
    dropped = layers.Dropout(dropout_rate, name="dropout")(pooled)
    outputs = layers.Dense(n_labels, activation="softmax", name="genre")(dropped)
    model = keras.Model(inputs, outputs, name="vgg16_bfft")
    if weights is not None and str(weights).endswith(".weights.h5"):
        _load_weights_file(model, Path(weights))
    _LOGGER.debug("built VGG16 for %d labels with %d parameters", n_labels,
                  model.count_params())
    return model
