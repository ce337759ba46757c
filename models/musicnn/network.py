"""The musicnn network (Pons & Serra, 2019) rebuilt from pure Keras 3 layers.

Mirrors ``musicnn.models.build_musicnn`` (package 0.1.0) layer for layer, in inference mode:

* input (N, T, 96) log-mel -> expand to (N, T, 96, 1) -> BatchNorm over the single channel;
* timbral front-end: time padding 3+3, Conv2D 7x38 and 7x67 (valid in frequency, 204 filters
  each, ReLU) -> BatchNorm -> max over frequency;
* temporal front-end: Conv2D 128x1, 64x1, 32x1 ('same' in TF1, i.e. zero padding
  ``(k - 1) // 2`` before and ``k // 2`` after; 51 filters each, ReLU) -> BatchNorm -> max over
  frequency; the five maps are concatenated to 561 channels per frame;
* mid-end: three 7-tap convolutions over time (64 filters, ReLU, BatchNorm), the 2nd and 3rd
  residual; dense concatenation -> 753 channels per frame;
* back-end: max and mean over time, interleaved ``[max_0, mean_0, max_1, ...]`` (1506) ->
  BatchNorm -> Dense 200 ReLU -> BatchNorm (= "penultimate") -> Dense 50 -> sigmoid.

TF1 ``batch_normalization`` uses epsilon 1e-3 like Keras 3, and the converted moving
mean/variance; dropout is identity at inference and is omitted. No backend-specific ops are used,
so the model runs on TensorFlow and JAX alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
from keras import layers

from models.musicnn.melspec import N_MELS, PATCH_FRAMES

_LOGGER = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent
CHECKPOINTS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
"""The musicnn package's checkpoints; the ``*_vgg`` ones are built by models/musicnn/vgg.py."""
BN_EPSILON = 1e-3
TIMBRAL_HEIGHTS = {"timbral_74": int(0.4 * N_MELS), "timbral_77": int(0.7 * N_MELS)}
TEMPORAL_LENGTHS = {"temporal_128": 128, "temporal_64": 64, "temporal_32": 32}
FRONTEND_TIMBRAL_FILTERS = int(1.6 * 128)
FRONTEND_TEMPORAL_FILTERS = int(1.6 * 32)
MIDEND_FILTERS = 64
BACKEND_UNITS = 200
N_TAGS = 50
OUTPUTS = ("tags", "penultimate", "max_pool", "mean_pool")
POOL_CHANNELS = 2 * FRONTEND_TIMBRAL_FILTERS + 3 * FRONTEND_TEMPORAL_FILTERS + 3 * MIDEND_FILTERS
EMBEDDING_DIMS = {"penultimate": BACKEND_UNITS, "max_pool": POOL_CHANNELS,
                  "mean_pool": POOL_CHANNELS}
"""Width of each embedding output (753 = 561 front-end + 3 x 64 mid-end channels)."""


def _bn(name: str) -> layers.BatchNormalization:
    """Inference BatchNorm with TF1's epsilon."""
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _max_over_frequency(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """(N, T, F, C) -> (N, T, C): max over the whole frequency axis."""
    pooled = layers.MaxPooling2D(pool_size=(1, x.shape[2]), name=f"{name}_pool")(x)
    return layers.Reshape((-1, x.shape[3]), name=f"{name}_squeeze")(pooled)


def _frontend(spec: keras.KerasTensor) -> keras.KerasTensor:
    """Timbral + temporal front-end: (N, T, 96) -> (N, T, 561)."""
    x = layers.Reshape((-1, N_MELS, 1), name="expand")(spec)
    x = _bn("input_bn")(x)
    maps = []
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    for name, height in TIMBRAL_HEIGHTS.items():
        y = layers.Conv2D(FRONTEND_TIMBRAL_FILTERS, (7, height), activation="relu",
                          name=f"{name}_conv")(padded)
        maps.append(_max_over_frequency(_bn(f"{name}_bn")(y), name))
    for name, length in TEMPORAL_LENGTHS.items():
        y = layers.ZeroPadding2D((((length - 1) // 2, length // 2), (0, 0)),
                                 name=f"{name}_pad")(x)
        y = layers.Conv2D(FRONTEND_TEMPORAL_FILTERS, (length, 1), activation="relu",
                          name=f"{name}_conv")(y)
        maps.append(_max_over_frequency(_bn(f"{name}_bn")(y), name))
    return layers.Concatenate(axis=-1, name="frontend")(maps)


def _midend(front: keras.KerasTensor) -> keras.KerasTensor:
    """Three 7-tap temporal convolutions with residuals, densely concatenated: -> 753."""
    outputs = [front]
    x = front
    for i in (1, 2, 3):
        y = layers.ZeroPadding1D(3, name=f"midend{i}_pad")(x)
        y = layers.Conv1D(MIDEND_FILTERS, 7, activation="relu", name=f"midend{i}_conv")(y)
        y = _bn(f"midend{i}_bn")(y)
        x = y if i == 1 else layers.Add(name=f"midend{i}_res")([y, x])
        outputs.append(x)
    return layers.Concatenate(axis=-1, name="midend")(outputs)


def _backend(features: keras.KerasTensor) -> dict[str, keras.KerasTensor]:
    """Temporal max/mean pooling -> penultimate dense layer -> tag probabilities."""
    channels = features.shape[-1]
    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(features)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(features)
    stacked = layers.Concatenate(axis=-1, name="pool_stack")([
        layers.Reshape((channels, 1), name="max_pool_col")(max_pool),
        layers.Reshape((channels, 1), name="mean_pool_col")(mean_pool),
    ])
    x = _bn("pool_bn")(layers.Flatten(name="pool_flat")(stacked))
    x = layers.Dense(BACKEND_UNITS, activation="relu", name="penultimate_dense")(x)
    penultimate = _bn("penultimate")(x)
    logits = layers.Dense(N_TAGS, name="logits")(penultimate)
    tags = layers.Activation("sigmoid", name="tags")(logits)
    return {"tags": tags, "penultimate": penultimate, "max_pool": max_pool,
            "mean_pool": mean_pool}


def build_musicnn(n_frames: int | None = PATCH_FRAMES, name: str = "musicnn") -> keras.Model:
    """The musicnn graph with fresh weights: (N, n_frames, 96) -> dict of OUTPUTS."""
    spec = keras.Input((n_frames, N_MELS), name="log_mel")
    outputs = _backend(_midend(_frontend(spec)))
    return keras.Model(spec, outputs, name=name)


def weights_path(checkpoint: str) -> Path:
    """Where the converted weights of ``checkpoint`` live."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"unknown musicnn checkpoint {checkpoint!r}; known: {CHECKPOINTS}")
    return WEIGHTS_DIR / f"{checkpoint}.npz"


def load_weights_npz(model: keras.Model, path: Path) -> None:
    """Set every weighted layer from ``<layer>/<weight>`` arrays; fail on any mismatch."""
    with np.load(path) as data:
        stored = {key: data[key] for key in data.files}
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for weight in layer.weights:
            key = f"{layer.name}/{weight.name}"
            if key not in stored:
                raise KeyError(f"{path.name} lacks {key}")
            value = stored.pop(key).astype(np.float32)
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(f"{key}: stored {value.shape}, model {weight.shape}")
            values.append(value)
        layer.set_weights(values)
    if stored:
        raise ValueError(f"{path.name} has weights no layer uses: {sorted(stored)}")


def outputs_of(checkpoint: str) -> tuple[str, ...]:
    """The named outputs of ``checkpoint``'s network."""
    from models.musicnn.vgg import VGG_OUTPUTS

    return VGG_OUTPUTS if checkpoint.endswith("_vgg") else OUTPUTS


def load_musicnn(checkpoint: str = "MSD_musicnn",
                 n_frames: int | None = PATCH_FRAMES) -> keras.Model:
    """Build the port and load the converted ``checkpoint`` weights (inference only)."""
    from models.musicnn.vgg import build_vgg

    path = weights_path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run tools/musicnn/convert.py "
                                f"--checkpoint {checkpoint}")
    model = (build_vgg(n_frames or PATCH_FRAMES, name=checkpoint)
             if checkpoint.endswith("_vgg") else build_musicnn(n_frames, name=checkpoint))
    load_weights_npz(model, path)
    model.trainable = False
    _LOGGER.info("loaded %s (%d parameters) from %s", checkpoint, model.count_params(), path)
    return model
