"""Reduced-precision Keras runtime: mixed-policy rebuild, nested stages, loader and config."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from daemon.config import ConfigError, config_from_dict

pytestmark = pytest.mark.tf

LABELS = ["blues", "classical", "jazz"]
MIXED = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    """A random tiny-cnn artifact."""
    from models import tiny
    from models.artifact import contract_for, save_artifact

    model = tiny.build_tiny_cnn(LABELS)
    contract = contract_for("test-tiny", tiny.MODEL_KIND, LABELS, tiny.IMAGE_SHAPE)
    return save_artifact(model, tmp_path_factory.mktemp("precision") / "tiny", contract)


def _patch_window_model():
    """A small window model shaped like musicnn-patch-head: nested encoder and 2-member head."""
    import keras
    from keras import layers

    from models.musicnn.spec import INPUT_SHAPE
    from models.patch_head import average_heads, build_patch_head, build_window_model

    inner_in = keras.Input(shape=INPUT_SHAPE[1:])
    inner = keras.Model(inner_in, layers.Dense(6, activation="relu")(
        layers.GlobalAveragePooling1D()(inner_in)), name="inner_net")
    patch = keras.Input(shape=INPUT_SHAPE[1:], name="log_mel_patch")
    encoder = keras.Model(patch, layers.Dense(5, name="features")(inner(patch)),
                          name="patch_encoder")
    rng = np.random.default_rng(1)
    members = [build_patch_head(rng.normal(size=5), rng.uniform(0.5, 2, 5), 4, hidden_units=3,
                                name=f"member_{i}") for i in range(2)]
    return build_window_model(encoder, average_heads(members), temperature=2.0)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_tiny_rebuild_keeps_weights_and_outputs(precision):
    from models import tiny
    from models.precision import model_policy, with_precision

    model = tiny.build_tiny_cnn(LABELS)
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    rebuilt = with_precision(model, precision)
    assert rebuilt is not model and model_policy(rebuilt) == MIXED[precision]
    assert rebuilt.get_layer("conv1").compute_dtype == precision
    assert rebuilt.get_layer("conv1").variable_dtype == "float32"
    for old, new in zip(model.get_weights(), rebuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    expected = np.asarray(model.predict_on_batch(images))
    got = rebuilt.predict_on_batch(images)
    assert got.dtype == np.float32  # the output layer stays float32
    np.testing.assert_allclose(got, expected, atol=0.05)
    assert with_precision(model, "float32") is model


def test_nested_patch_model_keeps_stages():
    from models.patch_head import stage_models
    from models.precision import model_policy, with_precision

    model = _patch_window_model()
    patches = np.random.default_rng(2).normal(1, 1, (3, 10, 187, 96)).astype(np.float32)
    expected = np.asarray(model.predict_on_batch(patches))
    rebuilt = with_precision(model, "bfloat16")
    got = rebuilt.predict_on_batch(patches)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=0.03)
    encoder, head, temperature = stage_models(rebuilt)
    assert temperature == pytest.approx(2.0)
    assert model_policy(encoder) == model_policy(head) == "mixed_bfloat16"
    assert head.get_layer("member_0").get_layer("hidden").compute_dtype == "bfloat16"
    assert encoder.get_layer("inner_net").layers[1].compute_dtype == "bfloat16"
    logits = np.asarray(head.predict_on_batch(encoder.predict_on_batch(patches[0])))
    assert logits.shape == (10, 4) and logits.dtype == np.float32


def test_load_model_precision(tiny_artifact):
    from models.contract import ArtifactError
    from models.loader import load_model

    images = np.random.default_rng(3).integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    plain = load_model(tiny_artifact)
    mixed = load_model(tiny_artifact, precision="bfloat16")
    assert "mixed_bfloat16" in mixed.predictor.describe()
    assert "mixed" not in plain.predictor.describe()
    got = mixed.predict(images)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, plain.predict(images), atol=0.05)
    with pytest.raises(ArtifactError, match="--quantize float16"):
        load_model(tiny_artifact, runtime="tflite", precision="bfloat16")
    with pytest.raises(ArtifactError, match="known: .*bfloat16"):
        load_model(tiny_artifact, precision="int4")


def test_precision_config_and_cli():
    from training.library import add_parser

    assert config_from_dict({}).inference.precision == "auto"
    assert config_from_dict({"inference": {"precision": "bfloat16"}}).inference.precision \
        == "bfloat16"
    with pytest.raises(ConfigError, match=r"inference\.precision: must be one of"):
        config_from_dict({"inference": {"precision": "int4"}})
    with pytest.raises(ConfigError, match=r"inference\.precision: is for runtime keras"):
        config_from_dict({"inference": {"runtime": "tflite", "precision": "float16"}})
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["classify", "m", "f.wav", "--precision", "bfloat16"])
    assert args.precision == "bfloat16"
    with pytest.raises(SystemExit):
        parser.parse_args(["classify", "m", "f.wav", "--precision", "int4"])
