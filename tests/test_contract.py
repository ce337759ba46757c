"""models/contract.py without Keras: parsing, checking against the code, updating, I/O shapes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.contract import (
    CONTRACT_FILE,
    FORMAT_VERSION,
    MODEL_FILE,
    ArtifactError,
    Contract,
    check_contract,
    check_io,
    parse_contract,
    read_contract,
    update_contract,
)
from models.registry import FRONTENDS
from tests.conftest import REPO_ROOT

LABELS = ["rock", "jazz", "pop"]
BFFT = FRONTENDS["bfft"]


def contract_dict(**changes: Any) -> dict[str, Any]:
    """A valid on-disk contract of the bfft front-end, with top-level ``changes``."""
    data = {"format_version": FORMAT_VERSION, "name": "m", "model_kind": "vgg16-bfft",
            "model_file": "model.keras",
            "frontend": {"name": "bfft", "version": BFFT.version,
                         "params": copy.deepcopy(BFFT.params)},
            "sample_rate_hz": BFFT.params["sample_rate_hz"], "labels": list(LABELS),
            "input_shape": [224, 224, 3], "training": {"clips": 10},
            "metrics": {"accuracy": 0.5}, "extra": {"note": "x"}}
    data.update(changes)
    return data


def contract(**changes: Any) -> Contract:
    """The parsed :func:`contract_dict`."""
    return parse_contract(contract_dict(**changes), "here")


def write_contract(folder: Path, data: Any) -> Path:
    """``folder``/contract.json holding ``data`` as JSON; the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONTRACT_FILE).write_text(json.dumps(data), encoding="utf-8")
    return folder


def error_of(function: Any, *args: Any) -> str:
    """The message of the ArtifactError ``function(*args)`` raises."""
    with pytest.raises(ArtifactError) as error:
        function(*args)
    return str(error.value)


def test_parse_contract_reads_every_field():
    """Each key lands in its field; lists become tuples."""
    parsed = contract(head={"pooling": "mean"})
    assert parsed == Contract(
        name="m", model_kind="vgg16-bfft", frontend_name="bfft", frontend_version=BFFT.version,
        frontend_params=BFFT.params, sample_rate_hz=44100, labels=("rock", "jazz", "pop"),
        input_shape=(224, 224, 3), model_file="model.keras", training={"clips": 10},
        metrics={"accuracy": 0.5}, extra={"note": "x"}, head={"pooling": "mean"})


def test_optional_sections_default_to_empty():
    """Missing or null training/metrics/extra/head are {}; model_file has a default field."""
    data = contract_dict(training=None, metrics=None)
    del data["extra"]
    parsed = parse_contract(data, "here")
    assert parsed.training == {} and parsed.metrics == {} and parsed.extra == {}
    assert parsed.head == {} and MODEL_FILE == "model.keras"


@pytest.mark.parametrize(("data", "message"), [
    ([], "here: not a JSON object"),
    (contract_dict(format_version=2), "here: format_version 2 is not 1"),
    ({"name": "m"}, "here: format_version None is not 1"),
    (contract_dict(format_version="1"), "here: format_version '1' is not 1"),
])
def test_parse_contract_refuses_other_formats(data, message):
    """Not an object, or another format version: named exactly."""
    assert error_of(parse_contract, data, "here") == message


@pytest.mark.parametrize("key", ["name", "model_kind", "model_file", "sample_rate_hz",
                                 "input_shape", "labels", "frontend"])
def test_parse_contract_names_a_missing_key(key):
    """A missing required key is named with where it was looked for."""
    data = contract_dict()
    del data[key]
    assert error_of(parse_contract, data, "here") == f"here: missing key {key!r}"


@pytest.mark.parametrize(("key", "value", "type_name"), [
    ("name", 3, "int"), ("model_kind", None, "NoneType"), ("model_file", ["m"], "list"),
    ("sample_rate_hz", 44100.0, "float"), ("input_shape", (224,), "tuple"),
    ("labels", "rock", "str"), ("frontend", [], "list")])
def test_parse_contract_names_a_key_of_the_wrong_type(key, value, type_name):
    """A key of the wrong type is named with the type found."""
    data = contract_dict(**{key: value})
    assert error_of(parse_contract, data, "here") == (
        f"here: {key!r} has the wrong type ({type_name})")


@pytest.mark.parametrize(("key", "value", "type_name"), [
    ("name", 1, "int"), ("version", "1", "str"), ("params", [], "list")])
def test_parse_contract_names_a_wrong_frontend_key(key, value, type_name):
    """The front-end's keys are checked too, named as '<where> frontend'."""
    data = contract_dict()
    data["frontend"][key] = value
    assert error_of(parse_contract, data, "here") == (
        f"here frontend: {key!r} has the wrong type ({type_name})")
    del data["frontend"][key]
    assert error_of(parse_contract, data, "here") == f"here frontend: missing key {key!r}"


@pytest.mark.parametrize("labels", [["rock"], [], ["rock", ""], ["rock", 2], ["", "jazz"]])
def test_labels_must_be_two_or_more_non_empty_strings(labels):
    """One label, an empty one or a non-string: refused."""
    assert error_of(parse_contract, contract_dict(labels=labels), "here") == (
        "here: 'labels' must be 2 or more non-empty strings")


def test_two_labels_are_enough_and_duplicates_are_refused():
    """Exactly two distinct labels parse; a repeated label does not."""
    assert contract(labels=["a", "b"]).labels == ("a", "b")
    assert error_of(parse_contract, contract_dict(labels=["a", "b", "a"]), "here") == (
        "here: 'labels' has duplicates")


def test_head_must_be_an_object():
    """A head that is not an object is named with its type."""
    assert error_of(parse_contract, contract_dict(head=[1]), "here") == (
        "here: 'head' has the wrong type (list)")
    assert contract(head=[]).head == {}  # empty: no head


@pytest.mark.parametrize(("head", "n_outputs"), [
    ({}, 3), ({"no_music_output": True}, 4), ({"no_music_output": False}, 3),
    ({"pooling": "mean"}, 3)])
def test_n_outputs_adds_one_column_for_no_music(head, n_outputs):
    """The labels, plus exactly one column when the head declares no_music_output."""
    assert contract(head=head).n_outputs == n_outputs


def test_to_dict_is_the_on_disk_layout_and_parses_back():
    """to_dict gives the file's keys (head only when set), stamped in UTC; it parses back."""
    parsed = contract()
    data = parsed.to_dict()
    created = dt.datetime.fromisoformat(data.pop("created_utc"))
    assert created.utcoffset() == dt.timedelta(0) and created.microsecond == 0
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert data == contract_dict()
    assert parse_contract(parsed.to_dict(), "again") == parsed
    with_head = contract(head={"no_music_output": True}).to_dict()
    assert with_head["head"] == {"no_music_output": True}


def test_read_contract_of_a_folder(tmp_path):
    """A folder's contract.json (UTF-8) is read and parsed, errors naming the file."""
    folder = write_contract(tmp_path / "m", contract_dict(labels=["rock", "jazz", "città"]))
    assert read_contract(folder).labels == ("rock", "jazz", "città")
    assert read_contract(str(folder)) == read_contract(folder)
    write_contract(folder, contract_dict(format_version=7))
    assert error_of(read_contract, folder) == (
        f"{folder / CONTRACT_FILE}: format_version 7 is not 1")


def test_contract_json_is_utf_8_whatever_the_locale(tmp_path):
    """Under an ASCII locale (LANG=C, no UTF-8 mode) non-ASCII labels still read and update."""
    folder = tmp_path / "m"
    folder.mkdir()
    text = json.dumps(contract_dict(labels=["rock", "città"]), ensure_ascii=False)
    (folder / CONTRACT_FILE).write_bytes(text.encode("utf-8"))
    code = ("import sys; from models.contract import read_contract, update_contract; "
            "assert read_contract(sys.argv[1]).labels[1] == 'citt\\u00e0'; "
            "assert update_contract(sys.argv[1], metrics={'f1': 1}).labels[1] == 'citt\\u00e0'")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0", "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-c", code, str(folder)], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert read_contract(folder).labels == ("rock", "città")
    # in this process too (mutmut runs a test only for the functions it calls itself)
    assert update_contract(folder, metrics={}).metrics == {"accuracy": 0.5, "f1": 1}


def test_read_contract_of_a_missing_folder_or_file(tmp_path):
    """No folder, a file instead of one, or no contract.json: each named."""
    assert error_of(read_contract, tmp_path / "nope") == (
        f"model folder not found: {tmp_path / 'nope'}")
    (tmp_path / "file").write_text("x")
    assert error_of(read_contract, tmp_path / "file") == (
        f"model folder not found: {tmp_path / 'file'}")
    (tmp_path / "empty").mkdir()
    assert error_of(read_contract, tmp_path / "empty") == (
        f"{tmp_path / 'empty'}: no contract.json (not a genred model artifact)")


@pytest.mark.parametrize("text", [b"{not json", b"\xff\xfe{}", "[" * 100_000])
def test_read_contract_of_unreadable_json(tmp_path, text):
    """Bad JSON, bad UTF-8 or JSON nested too deeply: an ArtifactError, not a crash."""
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / CONTRACT_FILE
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    message = error_of(read_contract, folder)
    assert message.startswith(f"{path}: unreadable JSON (")
    if isinstance(text, str):
        assert message == f"{path}: unreadable JSON (nested too deeply)"


def test_check_contract_accepts_the_running_code():
    """Every registered front-end's own parameters pass."""
    for name, frontend in FRONTENDS.items():
        check_contract(contract(frontend={"name": name, "version": frontend.version,
                                          "params": dict(frontend.params)},
                                sample_rate_hz=frontend.params["sample_rate_hz"]))


def test_check_contract_refuses_an_unknown_frontend():
    """A front-end this code lacks is named with the model."""
    data = contract(frontend={"name": "mfcc", "version": 1, "params": {}})
    assert error_of(check_contract, data) == (
        "model 'm' needs front-end 'mfcc', which this code does not have")


def test_check_contract_names_every_difference():
    """Version, a changed, a missing and an extra parameter and the rate: all in one message."""
    params = {**BFFT.params, "fft_length": 4096, "extra_key": 1}
    del params["colormap"]
    data = contract(frontend={"name": "bfft", "version": BFFT.version + 1, "params": params},
                    sample_rate_hz=22050)
    assert error_of(check_contract, data) == (
        "model 'm' does not match this code's front-end 'bfft': "
        f"front-end version {BFFT.version + 1} != code's {BFFT.version}; "
        "front-end colormap: model has None, code has 'brg'; "
        "front-end extra_key: model has 1, code has None; "
        "front-end fft_length: model has 4096, code has 6144; "
        "sample_rate_hz: model has 22050, code has 44100")


def test_check_contract_names_a_single_difference():
    """One parameter off: just it, after the front-end's name."""
    params = {**BFFT.params, "dynamic_range_db": 81.0}
    data = contract(frontend={"name": "bfft", "version": BFFT.version, "params": params})
    assert error_of(check_contract, data) == (
        "model 'm' does not match this code's front-end 'bfft': "
        "front-end dynamic_range_db: model has 81.0, code has 80.0")


def test_update_contract_merges_sections(tmp_path):
    """New keys join a section, the same keys are replaced, new sections appear; atomic."""
    folder = write_contract(tmp_path / "m", contract_dict(metrics={"accuracy": 0.5, "f1": 0.4}))
    updated = update_contract(folder, metrics={"accuracy": 0.9, "loss": 0.1},
                              extra={"more": True}, head={"pooling": "mean"})
    assert updated.metrics == {"accuracy": 0.9, "f1": 0.4, "loss": 0.1}
    assert updated.extra == {"note": "x", "more": True} and updated.head == {"pooling": "mean"}
    assert read_contract(folder) == updated
    text = (folder / CONTRACT_FILE).read_text(encoding="utf-8")
    assert text.startswith('{\n  "format_version": 1,\n') and text.endswith("}\n")
    assert sorted(path.name for path in folder.iterdir()) == [CONTRACT_FILE]


def test_update_contract_of_a_null_section(tmp_path):
    """A section stored as null is treated as empty."""
    folder = write_contract(tmp_path / "m", contract_dict(training=None))
    assert update_contract(folder, training={"clips": 3}).training == {"clips": 3}


def test_update_contract_names_the_file_it_parsed(tmp_path):
    """The merged contract is parsed again; its errors name the file."""
    folder = write_contract(tmp_path / "m", contract_dict(format_version=2))
    assert error_of(update_contract, folder) == (
        f"{folder / CONTRACT_FILE}: format_version 2 is not 1")


def test_check_io_accepts_matching_shapes():
    """The same input shape (list or tuple) and output count pass."""
    check_io((224, 224, 3), 3, contract(), "model")
    check_io([224, 224, 3], 4, contract(head={"no_music_output": True}), "model")


def test_check_io_names_a_wrong_input_shape():
    """Another input shape: both shapes named."""
    assert error_of(check_io, [224, 224, 1], 3, contract(), "m.keras") == (
        "m.keras: model input (224, 224, 1) != contract (224, 224, 3)")


def test_check_io_names_a_wrong_output_count():
    """Another output count: named, with the labels (and the no-music column when declared)."""
    assert error_of(check_io, (224, 224, 3), 4, contract(), "m.keras") == (
        "m.keras: model has 4 outputs but the contract lists 3 (3 labels)")
    with_no_music = contract(head={"no_music_output": True})
    assert error_of(check_io, (224, 224, 3), 3, with_no_music, "m.keras") == (
        "m.keras: model has 3 outputs but the contract lists 4 (3 labels + no music)")
