"""The report's VGG16 and the artifact contract: save, load, refuse mismatches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import vgg16
from models.artifact import contract_for, save_artifact
from models.contract import ArtifactError, check_contract, read_contract, update_contract
from models.loader import load_artifact

LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
          "reggae", "rock"]


@pytest.fixture(scope="module")
def model():
    return vgg16.build_vgg16(LABELS, weights=None)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("models") / "test-vgg16"
    contract = contract_for("test-vgg16", vgg16.MODEL_KIND, LABELS, vgg16.IMAGE_SHAPE,
                            training={"note": "random weights"}, metrics={})
    return save_artifact(model, folder, contract)


def test_exact_parameter_count(model):
    assert model.count_params() == 14_719_818


def test_architecture_layers(model):
    names = [layer.name for layer in model.layers]
    assert names[1:] == ["vgg16_preprocess", "vgg16", "global_max_pool", "dropout", "genre"]
    assert model.get_layer("dropout").rate == pytest.approx(0.3)
    assert model.get_layer("genre").activation.__name__ == "softmax"


def test_preprocessing_matches_keras(model):
    import keras

    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(model.get_layer("vgg16_preprocess")(images))
    theirs = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_imagenet_offline_message(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(vgg16, "_can_reach", lambda host, port=443: False)
    with pytest.raises(vgg16.WeightsUnavailableError) as error:
        vgg16.build_vgg16(LABELS, weights="imagenet")
    message = str(error.value)
    assert vgg16.IMAGENET_NOTOP_FILE in message and str(tmp_path) in message


def test_missing_weights_file(tmp_path):
    with pytest.raises(vgg16.WeightsUnavailableError, match="not found"):
        vgg16.build_vgg16(LABELS, weights=tmp_path / "nope.h5")


def test_round_trip_predictions_equal(artifact, model):
    loaded = load_artifact(artifact)
    images = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3)).astype(np.uint8)
    probabilities = loaded.predict(images)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, model.predict_on_batch(images), atol=1e-6)
    assert loaded.labels == tuple(LABELS)


def test_contract_contents(artifact):
    data = json.loads((artifact / "contract.json").read_text())
    assert data["frontend"]["name"] == "bfft" and data["sample_rate_hz"] == 44100
    assert data["frontend"]["params"]["n_time_bins"] == 224
    assert data["labels"] == LABELS and data["model_kind"] == "vgg16-bfft"
    updated = update_contract(artifact, metrics={"accuracy": 0.5})
    assert updated.metrics["accuracy"] == 0.5


def _copy(artifact, tmp_path, name="copy"):
    import shutil

    target = tmp_path / name
    shutil.copytree(artifact, target)
    return target


def _edit_contract(folder, edit):
    path = folder / "contract.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_mismatched_frontend_param_is_named(artifact, tmp_path):
    folder = _copy(artifact, tmp_path)
    _edit_contract(folder, lambda d: d["frontend"]["params"].update(fft_length=4096))
    with pytest.raises(ArtifactError, match="fft_length: model has 4096, code has 6144"):
        load_artifact(folder)


def test_wrong_sample_rate_and_version(artifact, tmp_path):
    folder = _copy(artifact, tmp_path)
    _edit_contract(folder, lambda d: d.update(sample_rate_hz=22050))
    with pytest.raises(ArtifactError, match="sample_rate_hz"):
        check_contract(read_contract(folder))
    _edit_contract(folder, lambda d: d["frontend"].update(version=99))
    with pytest.raises(ArtifactError, match="version 99"):
        load_artifact(folder)


def test_unknown_frontend_and_kind(artifact, tmp_path):
    folder = _copy(artifact, tmp_path)
    _edit_contract(folder, lambda d: d["frontend"].update(name="mfcc"))
    with pytest.raises(ArtifactError, match="'mfcc'"):
        load_artifact(folder)
    folder = _copy(artifact, tmp_path, "kind")
    _edit_contract(folder, lambda d: d.update(model_kind="resnet"))
    with pytest.raises(ArtifactError, match="unknown model kind 'resnet'"):
        load_artifact(folder)


def test_missing_and_corrupt_files(artifact, tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "absent")
    folder = _copy(artifact, tmp_path, "nocontract")
    (folder / "contract.json").unlink()
    with pytest.raises(ArtifactError, match="no contract.json"):
        load_artifact(folder)
    folder = _copy(artifact, tmp_path, "nomodel")
    (folder / "model.keras").unlink()
    with pytest.raises(ArtifactError, match="model file model.keras is missing"):
        load_artifact(folder)
    folder = _copy(artifact, tmp_path, "corrupt")
    (folder / "model.keras").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(ArtifactError, match="cannot load model file"):
        load_artifact(folder)
    folder = _copy(artifact, tmp_path, "badjson")
    (folder / "contract.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable JSON"):
        load_artifact(folder)


def test_labels_must_match_outputs(artifact, tmp_path):
    folder = _copy(artifact, tmp_path)
    _edit_contract(folder, lambda d: d.update(labels=LABELS[:9]))
    with pytest.raises(ArtifactError, match="10 outputs but the contract lists 9"):
        load_artifact(folder)


def test_unknown_frontend_in_contract_for():
    with pytest.raises(ArtifactError, match="unknown front-end"):
        contract_for("x", "vgg16-bfft", LABELS, (224, 224, 3), frontend_name="nope")


def test_float16_storage_halves_size_and_keeps_predictions(model, tmp_path):
    contract = contract_for("f16", vgg16.MODEL_KIND, LABELS, vgg16.IMAGE_SHAPE)
    folder = save_artifact(model, tmp_path / "f16", contract, storage="float16")
    assert (folder / "model.json").is_file() and not (folder / "model.keras").exists()
    size_bytes = (folder / "weights.f16.npz").stat().st_size
    assert size_bytes < 14_719_818 * 2 * 1.01
    loaded = load_artifact(folder)
    assert loaded.contract.model_file == "model.json"
    images = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3)).astype(np.uint8)
    np.testing.assert_allclose(loaded.predict(images), model.predict_on_batch(images),
                               atol=2e-3)
    (folder / "weights.f16.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="cannot load model file"):
        load_artifact(folder)


def test_registry_is_consistent():
    from models.registry import FRONTENDS, MODEL_KINDS, trainable_kinds

    assert trainable_kinds() == ["tiny-cnn", "vgg16-bfft"]
    assert all(kind.frontend in FRONTENDS for kind in MODEL_KINDS.values())
    with pytest.raises(ValueError, match="no training builder"):
        MODEL_KINDS["musicnn-patch-head"].build(LABELS, "none")
