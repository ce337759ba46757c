"""The musicnn package's VGG-style tagger (``musicnn.models.vgg``) rebuilt in Keras 3.

Mirrors ``vgg(x, is_training=False, num_classes=50, num_filters=128)`` of musicnn 0.1.0
(checkpoints ``MSD_vgg``, ``MTT_vgg``), on the same (187, 96) log-mel patches as musicnn:

* input (N, 187, 96) -> expand to (N, 187, 96, 1) -> BatchNorm;
* five blocks Conv2D 3x3 'same' (128 filters, ReLU) -> BatchNorm -> MaxPool (valid):
  (4, 1)/2, (2, 2)/2, (2, 2)/2, (2, 2)/2, (4, 4)/4, i.e. 92x48, 46x24, 23x12, 11x6, 2x1;
* flatten pool5 (256) -> Dense 50 -> sigmoid (dropout is identity at inference).

Outputs: ``tags`` (50 probabilities), ``pool5`` (256, the flattened last block), and
``pool4_mean`` / ``pool4_max`` (128 each: the fourth block pooled over time and frequency).
"""

from __future__ import annotations

import keras
from keras import layers

from models.musicnn.melspec import N_MELS, PATCH_FRAMES

VGG_FILTERS = 128
VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)),
             ((4, 4), (4, 4)))
"""(pool size, strides) after each of the five convolution blocks."""
VGG_OUTPUTS = ("tags", "pool5", "pool4_mean", "pool4_max")
VGG_TAGS = 50
BN_EPSILON = 1e-3


def build_vgg(n_frames: int = PATCH_FRAMES, name: str = "vgg") -> keras.Model:
    """The VGG tagger with fresh weights: (N, 187, 96) -> dict of VGG_OUTPUTS."""
    spec = keras.Input((n_frames, N_MELS), name="log_mel")
    x = layers.Reshape((n_frames, N_MELS, 1), name="expand")(spec)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="input_bn")(x)
    pooled = []
    for block, (size, strides) in enumerate(VGG_POOLS, start=1):
        x = layers.Conv2D(VGG_FILTERS, (3, 3), padding="same", activation="relu",
                          name=f"conv{block}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"bn{block}")(x)
        x = layers.MaxPooling2D(size, strides, padding="valid", name=f"pool{block}")(x)
        pooled.append(x)
    pool5 = layers.Flatten(name="pool5_flat")(pooled[4])
    logits = layers.Dense(VGG_TAGS, name="logits")(pool5)
    return keras.Model(spec, {
        "tags": layers.Activation("sigmoid", name="tags")(logits), "pool5": pool5,
        "pool4_mean": layers.GlobalAveragePooling2D(name="pool4_mean")(pooled[3]),
        "pool4_max": layers.GlobalMaxPooling2D(name="pool4_max")(pooled[3])}, name=name)


VGG_LAYER_MAP = {"input_bn": "batch_normalization",
                 **{f"conv{i}": f"{i}CNN" for i in range(1, 6)},
                 **{f"bn{i}": f"batch_normalization_{i}" for i in range(1, 6)},
                 "logits": "dense"}
"""Keras layer -> TF1 variable scope in the MSD_vgg / MTT_vgg checkpoints."""
