"""Model artifacts: a folder with the Keras model file and contract.json.

The contract records everything the serving side must reproduce: the front-end (name,
version, every parameter), the sample rate, the labels in output order, the input shape,
plus the training-data summary and metrics. Loading refuses any difference from the
running code, naming it, so a model is never fed features it was not trained on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.frontend import DEFAULT_PARAMS, FRONTEND_NAME, FRONTEND_VERSION
from models.musicnn import spec as musicnn_spec

_LOGGER = logging.getLogger(__name__)

CONTRACT_FILE = "contract.json"
MODEL_FILE = "model.keras"
GRAPH_FILE = "model.json"
FLOAT16_WEIGHTS_FILE = "weights.f16.npz"
FORMAT_VERSION = 1

# Front-ends this code implements: name -> (version, parameters). Other modules may add theirs.
FRONTENDS: dict[str, tuple[int, dict[str, Any]]] = {
    FRONTEND_NAME: (FRONTEND_VERSION, DEFAULT_PARAMS.to_dict()),
    musicnn_spec.FRONTEND_NAME: (musicnn_spec.FRONTEND_VERSION, musicnn_spec.PARAMS),
}


class ArtifactError(Exception):
    """A model artifact is missing, corrupt, or does not match the running code."""


@dataclass(frozen=True)
class Contract:
    """The parsed contract.json of a model artifact."""

    name: str
    model_kind: str
    frontend_name: str
    frontend_version: int
    frontend_params: dict[str, Any]
    sample_rate_hz: int
    labels: tuple[str, ...]
    input_shape: tuple[int, ...]
    model_file: str = MODEL_FILE
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the on-disk layout."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model_kind": self.model_kind,
            "model_file": self.model_file,
            "frontend": {"name": self.frontend_name, "version": self.frontend_version,
                         "params": self.frontend_params},
            "sample_rate_hz": self.sample_rate_hz,
            "labels": list(self.labels),
            "input_shape": list(self.input_shape),
            "training": self.training,
            "metrics": self.metrics,
            "extra": self.extra,
            "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def contract_for(name: str, model_kind: str, labels: list[str], input_shape: tuple[int, ...],
                 frontend_name: str = FRONTEND_NAME, **sections: Any) -> Contract:
    """A contract for the running code's front-end ``frontend_name``."""
    if frontend_name not in FRONTENDS:
        raise ArtifactError(f"unknown front-end {frontend_name!r}")
    version, params = FRONTENDS[frontend_name]
    return Contract(
        name=name, model_kind=model_kind, frontend_name=frontend_name,
        frontend_version=version, frontend_params=dict(params),
        sample_rate_hz=int(params["sample_rate_hz"]), labels=tuple(labels),
        input_shape=tuple(input_shape), **sections,
    )


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """data[key] checked for presence and type, else ArtifactError naming it."""
    if key not in data:
        raise ArtifactError(f"{where}: missing key {key!r}")
    if not isinstance(data[key], kind):
        raise ArtifactError(f"{where}: {key!r} has the wrong type ({type(data[key]).__name__})")
    return data[key]


def parse_contract(data: Any, where: str) -> Contract:
    """Validate a contract dict's structure into a Contract."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{where}: not a JSON object")
    if data.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{where}: format_version {data.get('format_version')!r} is not "
                            f"{FORMAT_VERSION}")
    frontend = _require(data, "frontend", dict, where)
    labels = _require(data, "labels", list, where)
    if len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
        raise ArtifactError(f"{where}: 'labels' must be 2 or more non-empty strings")
    if len(set(labels)) != len(labels):
        raise ArtifactError(f"{where}: 'labels' has duplicates")
    return Contract(
        name=_require(data, "name", str, where),
        model_kind=_require(data, "model_kind", str, where),
        model_file=_require(data, "model_file", str, where),
        frontend_name=_require(frontend, "name", str, where + " frontend"),
        frontend_version=_require(frontend, "version", int, where + " frontend"),
        frontend_params=_require(frontend, "params", dict, where + " frontend"),
        sample_rate_hz=_require(data, "sample_rate_hz", int, where),
        labels=tuple(labels),
        input_shape=tuple(_require(data, "input_shape", list, where)),
        training=data.get("training") or {},
        metrics=data.get("metrics") or {},
        extra=data.get("extra") or {},
    )


def read_contract(folder: str | Path) -> Contract:
    """Read and structurally validate ``folder``/contract.json (no TensorFlow needed)."""
    path = Path(folder) / CONTRACT_FILE
    if not Path(folder).is_dir():
        raise ArtifactError(f"model folder not found: {folder}")
    if not path.is_file():
        raise ArtifactError(f"{folder}: no {CONTRACT_FILE} (not a genred model artifact)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: unreadable JSON ({error})") from error
    return parse_contract(data, str(path))


def check_contract(contract: Contract) -> None:
    """Raise ArtifactError naming every difference between the contract and the running code."""
    if contract.frontend_name not in FRONTENDS:
        raise ArtifactError(f"model {contract.name!r} needs front-end "
                            f"{contract.frontend_name!r}, which this code does not have")
    version, params = FRONTENDS[contract.frontend_name]
    problems = []
    if contract.frontend_version != version:
        problems.append(f"front-end version {contract.frontend_version} != code's {version}")
    for key in sorted(set(params) | set(contract.frontend_params)):
        theirs, ours = contract.frontend_params.get(key), params.get(key)
        if theirs != ours:
            problems.append(f"front-end {key}: model has {theirs!r}, code has {ours!r}")
    if contract.sample_rate_hz != params.get("sample_rate_hz"):
        problems.append(f"sample_rate_hz: model has {contract.sample_rate_hz}, code has "
                        f"{params.get('sample_rate_hz')}")
    if problems:
        raise ArtifactError(f"model {contract.name!r} does not match this code's front-end "
                            f"{contract.frontend_name!r}: " + "; ".join(problems))


def save_artifact(model: Any, folder: str | Path, contract: Contract,
                  storage: str = "float32") -> Path:
    """Write model file + contract.json into ``folder`` atomically (temp folder, rename).

    ``storage="float16"`` writes the graph as model.json and the weights as float16 in
    weights.f16.npz (half the size); loading casts them back to float32.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if storage not in ("float32", "float16"):
        raise ValueError(f"storage must be float32 or float16, got {storage!r}")
    if storage == "float16":
        contract = dataclasses.replace(contract, model_file=GRAPH_FILE)
    try:
        if storage == "float16":
            _save_float16(model, staging)
        else:
            model.save(str(staging / contract.model_file))
        text = json.dumps(contract.to_dict(), indent=2, sort_keys=False) + "\n"
        (staging / CONTRACT_FILE).write_text(text, encoding="utf-8")
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _LOGGER.info("saved model artifact %s", folder)
    return folder


def _save_float16(model: Any, folder: Path) -> None:
    """Graph as JSON plus float16 weights (in get_weights order)."""
    (folder / GRAPH_FILE).write_text(model.to_json(), encoding="utf-8")
    weights = {f"w{index:04d}": np.asarray(w, dtype=np.float16)
               for index, w in enumerate(model.get_weights())}
    np.savez(folder / FLOAT16_WEIGHTS_FILE, **weights)


def _load_float16(path: Path) -> Any:
    """Rebuild a model saved by _save_float16, weights cast back to float32."""
    import keras

    model = keras.models.model_from_json(path.read_text(encoding="utf-8"))
    with np.load(path.parent / FLOAT16_WEIGHTS_FILE) as stored:
        weights = [stored[key].astype(np.float32) for key in sorted(stored.files)]
    model.set_weights(weights)
    return model


def _replace_folder(staging: Path, folder: Path) -> None:
    """Move ``staging`` to ``folder``, keeping files in an existing folder that we don't write."""
    if not folder.exists():
        staging.rename(folder)
        return
    for item in staging.iterdir():
        target = folder / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)


def update_contract(folder: str | Path, **sections: dict[str, Any]) -> Contract:
    """Merge ``sections`` (e.g. metrics=...) into an artifact's contract.json."""
    path = Path(folder) / CONTRACT_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in sections.items():
        data[key] = {**(data.get(key) or {}), **value}
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return parse_contract(data, str(path))


@dataclass
class LoadedModel:
    """A checked contract with its Keras model, ready to predict."""

    contract: Contract
    model: Any
    folder: Path

    @property
    def labels(self) -> tuple[str, ...]:
        """Output labels in order."""
        return self.contract.labels

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_labels) float32 for a batch of features (N, *input_shape)."""
        if tuple(features.shape[1:]) != self.contract.input_shape:
            raise ValueError(f"features shape {features.shape[1:]} != model input "
                             f"{self.contract.input_shape}")
        probabilities = self.model.predict_on_batch(features)
        return np.asarray(probabilities, dtype=np.float32)


def load_artifact(folder: str | Path) -> LoadedModel:
    """Load and check an artifact; any problem raises ArtifactError naming it."""
    folder = Path(folder)
    contract = read_contract(folder)
    check_contract(contract)
    model_path = folder / contract.model_file
    if not model_path.is_file():
        raise ArtifactError(f"{folder}: model file {contract.model_file} is missing")
    model = _load_keras_model(model_path, contract.model_kind)
    _check_shapes(model, contract, folder)
    return LoadedModel(contract=contract, model=model, folder=folder)


def _load_keras_model(path: Path, model_kind: str) -> Any:
    """keras.saving.load_model with custom layers registered; corrupt files -> ArtifactError."""
    import keras

    from models import kinds

    kinds.register(model_kind)
    try:
        if path.name == GRAPH_FILE:
            return _load_float16(path)
        return keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # zip, h5 and deserialisation errors come in many types
        raise ArtifactError(f"{path}: cannot load model file ({type(error).__name__}: "
                            f"{error})") from error


def _check_shapes(model: Any, contract: Contract, folder: Path) -> None:
    """The model's input and output shapes must agree with the contract."""
    input_shape = tuple(model.inputs[0].shape[1:])
    output_size = model.outputs[0].shape[-1]
    if input_shape != contract.input_shape:
        raise ArtifactError(f"{folder}: model input {input_shape} != contract "
                            f"{contract.input_shape}")
    if output_size != len(contract.labels):
        raise ArtifactError(f"{folder}: model has {output_size} outputs but the contract "
                            f"lists {len(contract.labels)} labels")
