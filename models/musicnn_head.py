"""Model kind 'musicnn-head': the music-pretrained musicnn (MSD) embedding + a genre layer.

Input: a window's 10 log-mel patches (10, 187, 96) from the musicnn-mel front-end. Each
patch goes through musicnn up to its 200-d 'penultimate' layer, the 10 embeddings are
averaged, and one softmax layer maps them to genres. Only the softmax layer is trained.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import keras
import numpy as np
from keras import layers

from models.musicnn import load_musicnn
from models.musicnn.features import window_patches
from models.musicnn.spec import INPUT_SHAPE

_LOGGER = logging.getLogger(__name__)

MODEL_KIND = "musicnn-head"
CHECKPOINT = "MSD_musicnn"
EMBEDDING = "penultimate"


@lru_cache(maxsize=4)
def embedding_model(layer: str = EMBEDDING, checkpoint: str = CHECKPOINT) -> keras.Model:
    """musicnn cut at ``layer``: (N, 187, 96) patches -> (N, dim) embeddings."""
    base = load_musicnn(checkpoint)
    return keras.Model(base.input, base.output[layer], name=f"{checkpoint}_{layer}")


def window_embeddings(window_audio: np.ndarray, layer: str = EMBEDDING) -> np.ndarray:
    """Mean embedding of one 44.1 kHz window's patches."""
    patches = window_patches(window_audio)
    embeddings = np.asarray(embedding_model(layer).predict_on_batch(patches))
    return embeddings.mean(axis=0)


def build_head_model(labels: list[str], weights: np.ndarray, bias: np.ndarray) -> keras.Model:
    """The servable model: patches -> musicnn embeddings -> mean -> softmax(weights, bias)."""
    if weights.shape != (embedding_model().output.shape[-1], len(labels)):
        raise ValueError(f"head weights {weights.shape} do not fit {len(labels)} labels")
    patches = keras.Input(shape=INPUT_SHAPE, name="musicnn_patches")
    embeddings = layers.TimeDistributed(embedding_model(), name="musicnn")(patches)
    pooled = layers.GlobalAveragePooling1D(name="mean_over_patches")(embeddings)
    dense = layers.Dense(len(labels), activation="softmax", name="genre")
    outputs = dense(pooled)
    dense.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    model = keras.Model(patches, outputs, name="musicnn_head")
    model.get_layer("musicnn").trainable = False
    return model


def fold_standardisation(mean: np.ndarray, scale: np.ndarray, weights: np.ndarray,
                         bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights/bias on raw embeddings equal to (x - mean) / scale @ weights + bias."""
    raw_weights = weights / scale[:, np.newaxis]
    return raw_weights, bias - (mean / scale) @ weights
