"""runtime auto: the fastest runtime that agrees with Keras float32, measured once and cached
(issue 22 item 3). The measuring test runs the real probe on the shipped model and a demo clip."""

from __future__ import annotations

import dataclasses
import json
import subprocess

import numpy as np
import pytest

from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.runner import load_model_handle
from models import runtime_choice
from models.contract import ArtifactError
from models.runtime_choice import MIN_AGREEMENT, choose_runtime, pick
from models.runtime_probe import Candidate, Measurement
from tests.conftest import REPO_ROOT

DEFAULT_MODEL = REPO_ROOT / "models" / "genred-default"
VIBE = REPO_ROOT / "daemon" / "demo" / "01_Kevin_MacLeod_-_Vibe_Ace.ogg"
"""61 s: two 30-s windows, 20 patches, 11 windows at a one-patch hop."""


def measurement(runtime: str, precision: str, ms: float, agreement: float,
                cpu_ms: float | None = None, threads: int | None = None) -> Measurement:
    return Measurement(Candidate(runtime, precision, threads), ms,
                       ms if cpu_ms is None else cpu_ms, agreement, 40, agreement, "somewhere")


def no_probe(*args, **kwargs):
    raise AssertionError("the probe ran")


def test_the_cache_key_follows_the_model_files_not_its_card(tmp_path) -> None:
    import shutil

    folder = tmp_path / "genred-default"
    shutil.copytree(DEFAULT_MODEL, folder)
    found = runtime_choice.candidates(folder)
    key = runtime_choice.cache_key(folder, found, None)
    (folder / "README.md").write_text("an edited model card")
    assert runtime_choice.cache_key(folder, found, None) == key
    (folder / "model.tflite").write_bytes((folder / "model.tflite").read_bytes() + b"\0")
    assert runtime_choice.cache_key(folder, found, None) != key


def test_pick_takes_the_fastest_that_agrees() -> None:
    measured = [measurement("keras", "float32", 10.0, 1.0),
                measurement("keras", "bfloat16", 6.0, 0.975),  # fastest, one window flipped
                measurement("tflite", "float32", 9.0, 1.0)]
    best, reason = pick(measured)
    assert (best.runtime, best.precision) == ("tflite", "float32")
    assert "keras bfloat16 6.00 CPU ms / 6.00 ms (agreement 0.975)" in reason
    measured[1].top1_agreement = MIN_AGREEMENT
    assert pick(measured)[0].precision == "bfloat16"


def test_keras_must_be_clearly_faster_than_litert() -> None:
    """TensorFlow costs memory: Keras wins only when 1.15x faster than LiteRT."""
    measured = [measurement("keras", "float32", 10.0, 1.0),
                measurement("tflite", "float32", 11.0, 1.0)]
    assert pick(measured)[0].runtime == "tflite"
    measured[1].cpu_ms_per_unit = 11.6
    assert pick(measured)[0].runtime == "keras"
    assert pick(measured[:1])[0].runtime == "keras"  # no LiteRT: Keras


def test_the_daemon_counts_cpu_time_classify_wall_time() -> None:
    """Two threads wait less per patch but cost the machine more CPU per patch."""
    measured = [measurement("keras", "float32", 10.0, 1.0, cpu_ms=19.0),
                measurement("tflite", "float32", 6.0, 1.0, cpu_ms=12.0),
                measurement("tflite", "float32", 11.0, 1.0, cpu_ms=11.0, threads=1)]
    assert pick(measured, "cpu")[0].threads == 1
    assert pick(measured, "wall")[0].threads is None
    assert "tflite float32 1 thread 11.00 CPU ms / 11.00 ms" in pick(measured)[1]


def test_explicit_settings_win_without_measuring(monkeypatch) -> None:
    monkeypatch.delenv(runtime_choice.PROBE_SWITCH)
    monkeypatch.setattr(subprocess, "run", no_probe)
    choice = choose_runtime(DEFAULT_MODEL, "tflite", "auto")
    assert (choice.runtime, choice.precision, choice.reason) == ("tflite", "float32",
                                                                 "configured")
    assert choose_runtime(DEFAULT_MODEL, "keras", "bfloat16").precision == "bfloat16"
    ruled = choose_runtime(DEFAULT_MODEL, "auto", "float32")
    assert ruled.runtime == "tflite" and "default rule" in ruled.reason
    assert choose_runtime(DEFAULT_MODEL, "auto", "bfloat16").runtime == "keras"


def test_switch_off_takes_the_default_rule(monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", no_probe)
    choice = choose_runtime(DEFAULT_MODEL, "auto", "auto")
    assert choice.runtime == "tflite" and "not measured" in choice.reason


def test_a_broken_artifact_stops_before_measuring(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(runtime_choice.PROBE_SWITCH)
    monkeypatch.setattr(subprocess, "run", no_probe)
    with pytest.raises(ArtifactError, match="contract.json"):
        choose_runtime(tmp_path, "auto", "auto")


def test_a_failed_probe_falls_back_and_caches_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(runtime_choice.PROBE_SWITCH)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    not_audio = tmp_path / "x.ogg"
    not_audio.write_bytes(b"not audio")
    choice = choose_runtime(DEFAULT_MODEL, "auto", "auto", clips=[not_audio])
    assert choice.runtime == "tflite" and "measuring failed" in choice.reason
    assert not (tmp_path / "state" / "genred" / runtime_choice.CACHE_FILE).exists()


def test_measures_once_then_reads_the_cache(tmp_path, monkeypatch) -> None:
    """The real probe (a child process) on the shipped model: every candidate this install
    has is timed, the choice is the fastest agreeing one, and the second start reads it."""
    monkeypatch.delenv(runtime_choice.PROBE_SWITCH)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    found = runtime_choice.candidates(DEFAULT_MODEL)
    assert {c.name for c in found} >= {"keras float32", "tflite float32"}
    notes: list[str] = []
    choice = choose_runtime(DEFAULT_MODEL, "auto", "auto", clips=[VIBE], on_measure=notes.append)
    assert len(notes) == 1 and notes[0].startswith("runtime auto: measuring keras float32")
    assert [m.candidate for m in choice.measured] == found
    assert choice.measured[0].top1_agreement == 1.0 and choice.measured[0].n_windows == 11
    agreeing = [m for m in choice.measured if m.top1_agreement >= MIN_AGREEMENT]
    cheapest = min(agreeing, key=lambda m: m.cpu_ms_per_unit)
    assert (choice.runtime, choice.precision, choice.threads) == (
        cheapest.runtime, cheapest.precision, cheapest.threads)
    assert all(m.ms_per_unit > 0 and m.cpu_ms_per_unit > 0 and
               m.patch_top1_agreement is not None for m in choice.measured)
    cache = tmp_path / "state" / "genred" / runtime_choice.CACHE_FILE
    assert len(json.loads(cache.read_text())) == 1
    monkeypatch.setattr(subprocess, "run", no_probe)
    again = choose_runtime(DEFAULT_MODEL, "auto", "auto", clips=[VIBE], on_measure=notes.append)
    assert len(notes) == 1  # the cache: nothing to announce
    assert (again.runtime, again.precision) == (choice.runtime, choice.precision)
    assert "cached in" in again.reason and again.measured == choice.measured
    assert choose_runtime(DEFAULT_MODEL, "auto", "auto", criterion="wall").measured \
        == choice.measured  # the other criterion picks from the same measurements
    monkeypatch.setattr(runtime_choice, "cpu_model", lambda: "another CPU")
    with pytest.raises(AssertionError, match="the probe ran"):  # another machine measures
        choose_runtime(DEFAULT_MODEL, "auto", "auto", clips=[VIBE])


def test_the_choice_is_in_healthz() -> None:
    handle = load_model_handle(str(DEFAULT_MODEL), "auto", 1, "auto")
    service = build_service(config_from_dict({"sources": []}), handle)
    inference = service.health()["inference"]
    assert inference["runtime"] == "tflite" and inference["precision"] == "float32"
    assert "LiteRT" in inference["runs_on"] and "not measured" in inference["chosen_by"]


def test_config_precision_auto() -> None:
    assert config_from_dict({}).inference.precision == "auto"
    from daemon.schema import ConfigError

    with pytest.raises(ConfigError, match="inference.precision.*auto"):
        config_from_dict({"inference": {"precision": "int4"}})


def test_a_cache_entry_of_another_format_is_measured_again() -> None:
    old = {"k": {"measured": [{"runtime": "tflite", "precision": "float32", "threads": None,
                               "ms_per_unit": 3.0}]}}  # the first, flat form
    assert runtime_choice._cached(old, "k") is None and runtime_choice._cached({}, "k") is None
    entry = dataclasses.asdict(measurement("tflite", "float32", 3.0, 1.0))
    assert runtime_choice._cached({"k": {"measured": [entry]}}, "k")[0].ms_per_unit == 3.0


def test_patch_windows_are_every_run_of_ten_patches_of_a_clip() -> None:
    """A clip of 12 patches gives 3 windows; a second clip of 10 one more; never across clips."""
    from models.runtime_probe import window_top1

    logits = np.zeros((22, 3))
    logits[:10, 0] = 1.0  # window 0: label 0
    logits[10:12, 2] = 9.5  # windows 1-2 hold patches 10-11: label 2 (9.5 > 9, 19 > 8)
    logits[12:, 1] = 1.0  # the second clip: label 1
    assert window_top1(logits, [12, 10], 10).tolist() == [0, 2, 2, 1]
    assert window_top1(logits[:4], [4], None).tolist() == [0, 0, 0, 0]
