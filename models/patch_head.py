"""Model kind 'musicnn-patch-head': per-3-s-patch musicnn features -> patch head -> pooling.

The servable graph keeps the streaming form "patch encoder -> head per patch -> pooling
over the window's patches", as three named stages so a streaming caller can run them apart:

* ``patch_encoder`` (a Keras model, frozen): one (187, 96) log-mel patch -> the
  concatenated outputs of one or more musicnn networks (e.g. MSD_musicnn penultimate,
  mean_pool, max_pool and tags);
* ``patch_head`` (a Keras model): standardisation -> optional hidden layer -> logits over
  the genres plus, when the contract says so, a last "no music" logit;
* ``pool``: the mean of the patch logits over the window, divided by the calibration
  temperature, then softmax.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
from keras import layers

from models.musicnn import load_musicnn
from models.musicnn.spec import INPUT_SHAPE
from models.patch_tflite import PATCH_LOGITS

_LOGGER = logging.getLogger(__name__)

MODEL_KIND = "musicnn-patch-head"
ENCODER_LAYER = "patch_encoder"
HEAD_LAYER = "patch_head"
NO_MUSIC = "no_music"
"""Name of the extra output column for silence, speech and noise (never a genre)."""


def build_patch_encoder(encoders: list[dict]) -> keras.Model:
    """(187, 96) patch -> concatenated musicnn outputs, e.g. [{'network': 'MSD_musicnn',
    'outputs': ['penultimate', 'tags']}]."""
    patch = keras.Input(shape=INPUT_SHAPE[1:], name="log_mel_patch")
    parts = []
    for spec in encoders:
        base = load_musicnn(spec["network"])
        network = keras.Model(base.input, [base.output[o] for o in spec["outputs"]],
                              name=spec["network"])
        network.trainable = False
        outputs = network(patch)
        parts.extend(outputs if isinstance(outputs, list | tuple) else [outputs])
    features = parts[0] if len(parts) == 1 else layers.Concatenate(name="features")(parts)
    return keras.Model(patch, features, name=ENCODER_LAYER)


def build_patch_head(feature_mean: np.ndarray, feature_variance: np.ndarray, n_outputs: int,
                     hidden_units: int = 0, dropout: float = 0.5,
                     l2: float = 1e-3, name: str = HEAD_LAYER) -> keras.Model:
    """Standardise -> [Dense(hidden, relu) -> Dropout] -> Dense(n_outputs) logits."""
    features = keras.Input(shape=(feature_mean.shape[0],), name="patch_features")
    x = layers.Normalization(mean=feature_mean, variance=feature_variance,
                             name="standardise")(features)
    regulariser = keras.regularizers.l2(l2)
    if hidden_units:
        x = layers.Dropout(0.2, name="input_dropout")(x)
        x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=regulariser,
                         name="hidden")(x)
        x = layers.Dropout(dropout, name="hidden_dropout")(x)
    logits = layers.Dense(n_outputs, kernel_regularizer=regulariser, name="logits")(x)
    return keras.Model(features, logits, name=name)


def average_heads(members: list[keras.Model]) -> keras.Model:
    """One patch head whose logits are the mean of ``members``' logits."""
    if len(members) == 1:
        return members[0]
    features = keras.Input(shape=members[0].input.shape[1:], name="patch_features")
    logits = [member(features) for member in members]
    averaged = layers.Average(name="member_mean")(logits)
    return keras.Model(features, averaged, name=HEAD_LAYER)


def build_window_model(encoder: keras.Model, head: keras.Model,
                       temperature: float = 1.0) -> keras.Model:
    """(n_patches, 187, 96) window -> softmax(mean patch logits / temperature)."""
    patches = keras.Input(shape=INPUT_SHAPE, name="musicnn_patches")
    features = layers.TimeDistributed(encoder, name=ENCODER_LAYER)(patches)
    logits = layers.TimeDistributed(head, name=HEAD_LAYER)(features)
    pooled = layers.GlobalAveragePooling1D(name="pool")(logits)
    scaled = layers.Rescaling(1.0 / temperature, name="temperature")(pooled)
    probabilities = layers.Activation("softmax", name="probabilities")(scaled)
    return keras.Model(patches, probabilities, name="musicnn_patch_head")


def stage_models(window_model: keras.Model) -> tuple[keras.Model, keras.Model, float]:
    """(patch encoder, patch head, temperature) of a loaded window model, for streaming."""
    encoder = window_model.get_layer(ENCODER_LAYER).layer
    head = window_model.get_layer(HEAD_LAYER).layer
    temperature = 1.0 / float(window_model.get_layer("temperature").scale)
    return encoder, head, temperature


def patch_logits_model(window_model: keras.Model) -> tuple[keras.Model, float]:
    """(patch -> head logits model, temperature) of a loaded window model: the per-patch stage
    that streaming runs once per patch and ``genred export`` writes as TFLite."""
    encoder, head, temperature = stage_models(window_model)
    patch = keras.Input(shape=encoder.input_shape[1:], name="log_mel_patch")
    return keras.Model(patch, head(encoder(patch)), name=PATCH_LOGITS), temperature


def export_stage(window_model: keras.Model) -> tuple[keras.Model, dict]:
    """What ``genred export`` converts for this kind: the patch-logits stage (the runtime
    pools windows itself, with the contract's temperature)."""
    model, temperature = patch_logits_model(window_model)
    return model, {"stage": PATCH_LOGITS, "temperature": round(temperature, 6)}
