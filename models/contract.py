"""Model contracts: contract.json parsed, checked against the running code, updated.

The contract records everything the serving side must reproduce: the front-end (name,
version, every parameter), the sample rate, the labels in output order, the input shape,
plus the training-data summary and metrics. Checking refuses any difference from the
running code, naming it, so a model is never fed features it was not trained on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import GenredError
from models.registry import FRONTENDS

CONTRACT_FILE = "contract.json"
MODEL_FILE = "model.keras"
FORMAT_VERSION = 1


class ArtifactError(GenredError):
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
    head: dict[str, Any] = field(default_factory=dict)
    """How patch outputs become the window's output (encoders, pooling, temperature,
    no_music_output); empty for models that map a window straight to genres."""

    @property
    def n_outputs(self) -> int:
        """Model output columns: the labels, plus one 'no music' column when declared."""
        return len(self.labels) + (1 if self.head.get("no_music_output") else 0)

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
            **({"head": self.head} if self.head else {}),
            "training": self.training,
            "metrics": self.metrics,
            "extra": self.extra,
            "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


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
        head=_optional_dict(data, "head", where),
    )


def _optional_dict(data: dict, key: str, where: str) -> dict:
    """data[key] when present (must be an object), else {}."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ArtifactError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


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
    except RecursionError:
        raise ArtifactError(f"{path}: unreadable JSON (nested too deeply)") from None
    return parse_contract(data, str(path))


def check_contract(contract: Contract) -> None:
    """Raise ArtifactError naming every difference between the contract and the running code."""
    if contract.frontend_name not in FRONTENDS:
        raise ArtifactError(f"model {contract.name!r} needs front-end "
                            f"{contract.frontend_name!r}, which this code does not have")
    frontend = FRONTENDS[contract.frontend_name]
    version, params = frontend.version, frontend.params
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


def check_io(input_shape: tuple[int, ...], n_outputs: int, contract: Contract,
             where: str) -> None:
    """A model's input shape and output count must agree with the contract."""
    if tuple(input_shape) != contract.input_shape:
        raise ArtifactError(f"{where}: model input {tuple(input_shape)} != contract "
                            f"{contract.input_shape}")
    if n_outputs != contract.n_outputs:
        extra = " + no music" if contract.n_outputs > len(contract.labels) else ""
        raise ArtifactError(f"{where}: model has {n_outputs} outputs but the contract "
                            f"lists {contract.n_outputs} ({len(contract.labels)} labels{extra})")
