"""daemon/verdict.py: a source's window results -> no music, or raw and smoothed genres."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.change import ChangeConfig
from daemon.smoother import SmoothedResult, SmoothingConfig
from daemon.verdict import Verdict, WindowJudge, to_prediction
from models.outcome import WindowResult

STEP = 100.0
"""Samples per patch of the judges below."""
N_PATCHES = 4
ROCK, JAZZ = [3.0, 0.0], [0.0, 3.0]
"""Patch scores (logits) leading with rock, with jazz (softmax 0.95)."""


def make_judge(n_labels: int = 2, change_patches: int = 2,
               step: float | None = STEP) -> WindowJudge:
    """A judge with EMA 0.5, a 0.1 margin held 2 hops, and a change detector (0.8)."""
    return WindowJudge(n_labels, SmoothingConfig(alpha=0.5, hysteresis_margin=0.1,
                                                 hysteresis_hops=2),
                       ChangeConfig(change_patches=change_patches, change_probability=0.8),
                       step)


def result(outputs: list[float], patches: list[list[float]] | None = None) -> WindowResult:
    """A window result of ``outputs`` and (oldest first) patch scores."""
    scores = None if patches is None else np.array(patches, np.float32)
    return WindowResult(np.array(outputs, np.float32), scores)


def probabilities(verdict: Verdict) -> list[float]:
    """The smoothed probabilities of a genre verdict, as a list."""
    assert verdict.smoothed is not None
    return verdict.smoothed.probabilities.tolist()


@pytest.mark.parametrize("no_music", [0.5, 0.75])
def test_no_music_from_the_threshold_on(no_music):
    """p(no music) >= 0.5: a no-music verdict without genres."""
    verdict = make_judge(step=None).judge(result([0.3, 1 - 0.3 - no_music, no_music]), 100)
    assert verdict == Verdict(no_music=True) and verdict.raw is None
    assert verdict.smoothed is None


def test_just_below_the_threshold_is_music_renormalised():
    """p(no music) 0.49: genres, raw renormalised over the labels."""
    verdict = make_judge(step=None).judge(result([0.3, 0.21, 0.49]), 100)
    assert verdict.no_music is False
    np.testing.assert_allclose(verdict.raw, [0.3 / 0.51, 0.21 / 0.51], rtol=1e-6)
    np.testing.assert_allclose(probabilities(verdict), [0.3 / 0.51, 0.21 / 0.51], rtol=1e-6)
    assert verdict.smoothed.label_index == 0 and verdict.smoothed.changed


def test_a_model_without_a_no_music_column_is_always_music():
    """n_labels outputs: every window is music, probabilities as given."""
    verdict = make_judge(step=None).judge(result([0.4, 0.6]), 100)
    assert not verdict.no_music and verdict.raw.tolist() == pytest.approx([0.4, 0.6])


def test_smoothing_holds_the_label_between_windows():
    """One window of jazz after rock: the EMA and hysteresis keep rock."""
    judge = make_judge(step=None)
    judge.judge(result([0.9, 0.1]), 100)
    verdict = judge.judge(result([0.2, 0.8]), 200)
    assert probabilities(verdict) == pytest.approx([0.55, 0.45])
    assert verdict.raw.tolist() == pytest.approx([0.2, 0.8])
    assert verdict.smoothed.label_index == 0 and not verdict.smoothed.changed


def test_the_source_s_smoothing_config_is_used():
    """alpha 0.25 and a label change after one hop: not the smoother's defaults."""
    judge = WindowJudge(2, SmoothingConfig(alpha=0.25, hysteresis_margin=0.05,
                                           hysteresis_hops=1), ChangeConfig(), None)
    judge.judge(result([0.9, 0.1]), 100)
    verdict = judge.judge(result([0.1, 0.9]), 200)
    assert probabilities(verdict) == pytest.approx([0.7, 0.3])
    verdict = judge.judge(result([0.0, 1.0]), 300)
    assert probabilities(verdict) == pytest.approx([0.525, 0.475])
    verdict = judge.judge(result([0.0, 1.0]), 400)
    assert verdict.smoothed.label_index == 1 and verdict.smoothed.changed  # lead 0.21 > 0.05


def test_no_music_restarts_smoothing():
    """After a no-music window the next genre is taken at once (the smoother was reset)."""
    judge = make_judge(step=None)
    judge.judge(result([0.9, 0.1, 0.0]), 100)
    judge.judge(result([0.9, 0.1, 0.0]), 200)
    assert judge.judge(result([0.0, 0.0, 1.0]), 300).no_music
    verdict = judge.judge(result([0.2, 0.8, 0.0]), 400)
    assert probabilities(verdict) == pytest.approx([0.2, 0.8])
    assert verdict.smoothed.label_index == 1 and verdict.smoothed.changed


def test_results_without_patch_scores_make_no_detector():
    """No patch scores: the window's outputs are smoothed; no detector is made."""
    judge = make_judge()
    verdict = judge.judge(result([0.7, 0.3]), 400)
    assert judge.change is None and probabilities(verdict) == pytest.approx([0.7, 0.3])


@pytest.mark.parametrize(("change_patches", "step"), [(0, STEP), (2, None)])
def test_no_detector_when_the_config_or_the_model_says_none(change_patches, step):
    """change_patches 0, or no patch step: patch scores are ignored, the label held."""
    judge = make_judge(change_patches=change_patches, step=step)
    judge.judge(result([0.9, 0.1], [ROCK] * N_PATCHES), 400)
    verdict = judge.judge(result([0.7, 0.3], [ROCK, ROCK, JAZZ, JAZZ]), 500)
    assert judge.change is None and probabilities(verdict) == pytest.approx([0.8, 0.2])
    assert verdict.smoothed.label_index == 0


def rock_then_jazz_in_the_newest_patches(judge: WindowJudge) -> Verdict:
    """Two rock windows, then one whose newest 2 patches lead with jazz; the last verdict."""
    judge.judge(result([0.9, 0.1], [ROCK] * N_PATCHES), 400)
    judge.judge(result([0.9, 0.1], [ROCK] * N_PATCHES), 500)
    return judge.judge(result([0.7, 0.3], [ROCK, ROCK, JAZZ, JAZZ]), 600)


def test_a_change_in_the_newest_patches_moves_the_label_at_once():
    """The detector sees jazz in the newest patches: smoothing restarts on their pooling."""
    judge = make_judge()
    verdict = rock_then_jazz_in_the_newest_patches(judge)
    jazz = float(np.exp(3.0) / (1 + np.exp(3.0)))
    assert probabilities(verdict) == pytest.approx([1 - jazz, jazz], rel=1e-5)
    assert verdict.smoothed.label_index == 1 and verdict.smoothed.changed
    assert verdict.raw.tolist() == pytest.approx([0.7, 0.3])  # raw: the window's own
    assert judge.change is not None and judge.change.changes_detected == 1
    assert judge.change.n_patches == N_PATCHES and judge.change.n_labels == 2


def test_after_a_change_the_patches_since_it_are_pooled():
    """The window after the change smooths the pooling of the patches since the change."""
    judge = make_judge()
    rock_then_jazz_in_the_newest_patches(judge)
    verdict = judge.judge(result([0.6, 0.4], [ROCK, JAZZ, JAZZ, JAZZ]), 700)
    jazz = float(np.exp(3.0) / (1 + np.exp(3.0)))
    assert probabilities(verdict) == pytest.approx([1 - jazz, jazz], rel=1e-5)
    assert not verdict.smoothed.changed and judge.change.changes_detected == 1


def test_no_music_also_forgets_a_pending_change():
    """After no music, the window's own outputs are smoothed, not the patches since a change."""
    judge = WindowJudge(2, SmoothingConfig(), ChangeConfig(), STEP)
    judge.judge(result([0.9, 0.1, 0.0], [ROCK + [0.0]] * N_PATCHES), 400)
    judge.judge(result([0.7, 0.3, 0.0], [ROCK + [0.0]] * 2 + [JAZZ + [0.0]] * 2), 500)
    assert judge.change.changes_detected == 1
    assert judge.judge(result([0.0, 0.0, 1.0], [[0.0, 0.0, 5.0]] * N_PATCHES), 550).no_music
    verdict = judge.judge(result([0.6, 0.4, 0.0], [JAZZ + [0.0]] * N_PATCHES), 600)
    assert probabilities(verdict) == pytest.approx([0.6, 0.4])
    assert verdict.smoothed.label_index == 0 and verdict.smoothed.changed


def test_reset_forgets_the_smoothed_state():
    """reset(): the next window's genre is taken at once."""
    judge = make_judge(step=None)
    judge.judge(result([0.9, 0.1]), 100)
    judge.reset()
    verdict = judge.judge(result([0.2, 0.8]), 200)
    assert verdict.smoothed.label_index == 1 and verdict.smoothed.changed


def smoothed(probabilities: list[float], label_index: int) -> SmoothedResult:
    """A smoothed result leading with ``label_index``."""
    return SmoothedResult(np.array(probabilities), label_index,
                          probabilities[label_index], True)


def test_to_prediction_rounds_to_four_decimals_and_names_the_labels():
    """Every field of the prediction; probabilities rounded to 4 decimals, raw kept apart."""
    verdict = Verdict(False, np.array([0.123456, 0.876544], np.float32),
                      smoothed([0.333333333, 0.666666667], 1))
    prediction = to_prediction(verdict, "kitchen", (1500, 31500), 1_800_000_000.5,
                               ["rock", "jazz"], "m1")
    assert prediction.source == "kitchen" and prediction.model == "m1"
    assert (prediction.window_start_ms, prediction.window_end_ms) == (1500, 31500)
    assert prediction.wall_time == 1_800_000_000.5
    assert prediction.genre == "jazz" and prediction.confidence == 0.6667
    assert prediction.probabilities == {"rock": 0.3333, "jazz": 0.6667}
    assert prediction.raw_probabilities == {"rock": 0.1235, "jazz": 0.8765}
    assert type(prediction.confidence) is float
    assert all(type(p) is float for p in prediction.raw_probabilities.values())


@pytest.mark.parametrize("verdict", [
    Verdict(no_music=True),
    Verdict(False, None, smoothed([0.5, 0.5], 0)),
    Verdict(False, np.array([0.5, 0.5]), None)])
def test_to_prediction_refuses_a_verdict_without_genres(verdict):
    """No raw or no smoothed probabilities: a ValueError, not a half-filled prediction."""
    with pytest.raises(ValueError, match="^a no-music verdict has no prediction$"):
        to_prediction(verdict, "a", (0, 1), 0.0, ["rock", "jazz"], "m")


@pytest.mark.parametrize(("raw", "smoothed_probabilities"), [
    ([0.5, 0.5], [0.4, 0.3, 0.3]), ([0.4, 0.3, 0.3], [0.5, 0.5])])
def test_to_prediction_refuses_labels_of_another_length(raw, smoothed_probabilities):
    """Two labels for three raw or three smoothed probabilities: a ValueError, not a cut."""
    verdict = Verdict(False, np.array(raw), smoothed(smoothed_probabilities, 0))
    with pytest.raises(ValueError, match="zip"):
        to_prediction(verdict, "a", (0, 1), 0.0, ["rock", "jazz"], "m")
