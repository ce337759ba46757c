"""Early genre changes from per-patch scores (daemon/change.py), with the smoother."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.change import ChangeDetector, pooled_probabilities
from daemon.smoother import Smoother
from models.outcome import WindowResult

N_PATCHES, N_OUTPUTS, STEP = 10, 4, 131947.2
"""3 genres + a no-music column, on the 2.992-s patch grid."""


def patch_scores(genres: list[int], lead: float = 4.0, seed: int = 0) -> np.ndarray:
    """Scores (n, N_OUTPUTS): each patch leads with its genre by ``lead``, plus noise."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 0.3, (len(genres), N_OUTPUTS))
    scores[np.arange(len(genres)), genres] += lead
    return scores


def result_of(scores: np.ndarray) -> WindowResult:
    """A patch-head result: window outputs and its patch scores."""
    return WindowResult(pooled_probabilities(scores).astype(np.float32),
                        scores.astype(np.float32))


def update_window(detector: ChangeDetector, window_scores: np.ndarray, end_sample: int,
                  label: int | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(window outputs, outputs to smooth, moved) of a window's patch scores."""
    result = result_of(window_scores)
    to_smooth, moved = detector.update(result.outputs, result.patch_scores, end_sample, label)
    return result.outputs, to_smooth, moved


def end_of(last_index: int) -> int:
    """End sample of the window whose newest patch is ``last_index``."""
    return int((last_index + 1) * STEP)


def replay(genres: list[int], detector: ChangeDetector) -> tuple[list[int], list[bool]]:
    """Labels and detections of every window over a patch sequence."""
    scores, smoother, labels, moves = patch_scores(genres), Smoother(3), [], []
    for last in range(N_PATCHES - 1, len(genres)):
        result = result_of(scores[last - N_PATCHES + 1:last + 1])
        to_smooth, moved = detector.update(result.outputs, result.patch_scores, end_of(last),
                                           smoother.label_index)
        np.testing.assert_allclose(result.outputs, pooled_probabilities(
            scores[last - N_PATCHES + 1:last + 1]), rtol=0, atol=1e-6)
        if moved:
            smoother.reset()
        labels.append(smoother.update(to_smooth[:3] / to_smooth[:3].sum()).label_index)
        moves.append(moved)
    return labels, moves


def test_a_change_moves_the_label_after_the_newest_patches_agree() -> None:
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=3)
    labels, moves = replay([0] * 20 + [1] * 20, detector)
    first_new = 20 - (N_PATCHES - 1)  # window index whose newest patch is the first of genre 1
    assert labels[:first_new] == [0] * first_new
    assert moves.index(True) == first_new + 2 and sum(moves) == 1  # on the 3rd new patch
    assert labels[first_new + 2:] == [1] * (len(labels) - first_new - 2)  # and stays


def test_without_the_detector_the_window_lags() -> None:
    scores, smoother, labels = patch_scores([0] * 20 + [1] * 20), Smoother(3), []
    for last in range(N_PATCHES - 1, 40):
        probabilities = pooled_probabilities(scores[last - N_PATCHES + 1:last + 1])[:3]
        labels.append(smoother.update(probabilities / probabilities.sum()).label_index)
    assert labels.index(1) > 20 - (N_PATCHES - 1) + 4


def test_re_pooling_covers_the_patches_since_the_change_until_the_window_is_new() -> None:
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=2)
    scores = patch_scores([0] * 15 + [2] * 15)
    for last in range(N_PATCHES - 1, 30):
        window = scores[last - N_PATCHES + 1:last + 1]
        new = last - 15 + 1
        label = 0 if new <= 2 else 2  # the label moved on the detection
        outputs = pooled_probabilities(window).astype(np.float32)
        to_smooth, _ = detector.update(outputs, window, end_of(last), label)
        if 2 <= new < N_PATCHES:
            np.testing.assert_allclose(to_smooth, pooled_probabilities(scores[15:last + 1]),
                                       rtol=0, atol=1e-6)
        else:
            np.testing.assert_allclose(to_smooth, outputs, rtol=0, atol=0)


def test_steady_music_with_a_short_odd_passage_keeps_its_label() -> None:
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=3)
    labels, moves = replay([0] * 15 + [1, 1] + [0] * 15 + [1, 2, 1] + [0] * 10, detector)
    assert not any(moves) and set(labels) == {0}


def test_no_music_patches_are_never_a_genre_change() -> None:
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=3)
    _, moves = replay([0] * 15 + [3] * 10, detector)
    assert not any(moves)


def test_weak_agreement_is_not_a_change() -> None:
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=3, change_probability=0.99)
    _, moves = replay([0] * 15 + [1] * 10, detector)
    assert not any(moves)


def test_change_patches_must_fit_the_window() -> None:
    for bad in (0, N_PATCHES + 1):
        with pytest.raises(ValueError, match=f"^change_patches must be in 1..10, got {bad}$"):
            ChangeDetector(3, N_PATCHES, STEP, change_patches=bad)
    ChangeDetector(3, N_PATCHES, STEP, change_patches=N_PATCHES)


def test_one_agreeing_patch_is_enough_at_change_patches_1() -> None:
    labels, moves = replay([0] * 15 + [1] * 10, ChangeDetector(3, N_PATCHES, STEP, 1))
    assert moves.index(True) == 15 - (N_PATCHES - 1) and sum(moves) == 1 and labels[-1] == 1


def test_defaults_detect_on_the_second_new_patch() -> None:
    _, moves = replay([0] * 15 + [1] * 10, ChangeDetector(3, N_PATCHES, STEP))
    assert moves.index(True) == 15 - (N_PATCHES - 1) + 1


def test_newest_patches_that_disagree_are_not_a_change() -> None:
    """[1, 1, 2] pools to p(1) >= 0.8, but the three newest patches do not agree."""
    scores = patch_scores([0] * 15 + [1, 1, 2], lead=9.0)
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=3)
    assert pooled_probabilities(scores[-3:])[1] >= 0.8
    for last in range(N_PATCHES - 1, 18):
        _, _, moved = update_window(detector, (scores[last - N_PATCHES + 1:last + 1]),
                                      end_of(last), 0)
        assert not moved


def test_a_change_being_followed_is_counted_once_and_the_next_one_again() -> None:
    """While the caller's label lags, the same change is not detected again; a new genre is."""
    scores = patch_scores([0] * 12 + [1] * 5 + [2] * 5)
    detector = ChangeDetector(3, N_PATCHES, STEP, change_patches=2)
    moves = [update_window(detector, (scores[last - N_PATCHES + 1:last + 1]), end_of(last), 0)[2]
             for last in range(N_PATCHES - 1, 22)]
    assert [i + N_PATCHES - 1 for i, moved in enumerate(moves) if moved] == [13, 18]
    assert detector.changes_detected == 2


def test_the_threshold_is_inclusive() -> None:
    """Pooled probability exactly change_probability is a change."""
    scores = patch_scores([0] * 12 + [1] * 3)
    newest = scores[12:14]  # the newest two of the window ending at patch 13
    threshold = float(pooled_probabilities(newest.astype(np.float32))[1])
    detector = ChangeDetector(3, N_PATCHES, STEP, 2, change_probability=threshold)
    assert update_window(detector, (scores[-N_PATCHES - 1:-1]), end_of(13), 0)[2]


def test_reset_forgets_the_re_pooling() -> None:
    scores = patch_scores([0] * 12 + [1] * 3)
    detector = ChangeDetector(3, N_PATCHES, STEP, 2)
    assert update_window(detector, (scores[4:14]), end_of(13), 0)[2]
    detector.reset()
    outputs, to_smooth, _ = update_window(detector, (scores[5:15]), end_of(14), 1)
    np.testing.assert_array_equal(to_smooth, outputs)


def test_pooling_is_safe_for_large_scores() -> None:
    np.testing.assert_allclose(pooled_probabilities(np.array([[900.0, 0.0], [700.0, 0.0]])),
                               [1.0, 0.0])


def test_the_service_places_windows_on_the_2992_ms_patch_grid() -> None:
    """The daemon's detector steps one patch per 2.992 s at 44.1 kHz (the musicnn grid)."""
    from daemon.change import ChangeConfig, change_detector
    from models.patch_serving import PatchPooling

    step_samples = PatchPooling(lambda p: p, 1.0, N_PATCHES, 3).patch_step_samples
    detector = change_detector(ChangeConfig(), 3, N_PATCHES, step_samples)
    assert detector.step_samples == pytest.approx(2.992 * 44100, rel=1e-6)
    assert change_detector(ChangeConfig(), 3, N_PATCHES, None) is None
    assert change_detector(ChangeConfig(change_patches=0), 3, N_PATCHES, step_samples) is None


def service_labels(tmp_path, smoothing: dict) -> tuple[list[int], object]:
    """Labels of results with patch scores through Service._on_result, config ``smoothing``."""
    from daemon.classifier import WindowJob
    from daemon.config import config_from_dict
    from daemon.service import ModelHandle, Service
    from models.patch_serving import PatchExtractor
    from models.serving import FunctionServing

    placeholder = tmp_path / "unused.wav"
    placeholder.write_bytes(b"")
    config = config_from_dict({"server": {"port": 0}, "smoothing": smoothing, "sources": [
        {"name": "m", "kind": "url", "url": str(placeholder)}]})
    serving = FunctionServing(lambda: PatchExtractor(N_PATCHES),
                              lambda batch: np.empty((0, N_OUTPUTS)), patch_step_samples=STEP)
    service = Service(config, ModelHandle(name="fake", labels=["a", "b", "c"], serving=serving))
    scores, labels = patch_scores([0] * 20 + [1] * 12), []
    for last in range(N_PATCHES - 1, 32):
        job = WindowJob("m", None, 0, end_of(last), 44100)
        service._on_result(job, result_of(scores[last - N_PATCHES + 1:last + 1]))
        labels.append(service._runtimes["m"].judge.smoother.label_index)
    return labels, service._runtimes["m"].judge.change


def test_the_service_moves_the_label_on_a_detected_change(tmp_path) -> None:
    """The label follows after the 2nd new patch (the config's defaults)."""
    labels, detector = service_labels(tmp_path, {})
    assert labels.index(1) == 20 - (N_PATCHES - 1) + 1 and labels[-1] == 1  # 2nd new patch
    assert detector.changes_detected == 1 and detector.change_probability == 0.9


@pytest.mark.parametrize("smoothing", [{"change_patches": 0},
                                       {"change_patches": 2, "change_probability": 0.9999}])
def test_the_config_turns_the_detector_off_or_raises_its_bar(tmp_path, smoothing) -> None:
    """change_patches 0: no detector; a probability above the patches': no detection. Either
    way the label still follows the window, later, and every window gives a label."""
    labels, detector = service_labels(tmp_path, smoothing)
    assert None not in labels and labels[-1] == 1
    assert labels.index(1) > 20 - (N_PATCHES - 1) + 1
    if smoothing["change_patches"] == 0:
        assert detector is None
    else:
        assert detector.change_probability == 0.9999 and detector.changes_detected == 0


def test_the_change_keys_stay_under_smoothing() -> None:
    from daemon.config import ConfigError, config_from_dict

    config = config_from_dict({"smoothing": {"change_patches": 3, "change_probability": 0.7,
                                             "alpha": 0.4}})
    assert (config.change.change_patches, config.change.change_probability) == (3, 0.7)
    assert config.smoothing.alpha == 0.4
    with pytest.raises(ConfigError, match="smoothing.change_patches"):
        config_from_dict({"smoothing": {"change_patches": 11}})
    with pytest.raises(ConfigError, match="smoothing.change_probability"):
        config_from_dict({"smoothing": {"change_probability": "high"}})
    with pytest.raises(ConfigError, match="change: unknown key"):
        config_from_dict({"change": {"change_patches": 1}})


def band_encoder(patches: np.ndarray) -> np.ndarray:
    """A per-patch 'model': logit 2.7 for 'low' or 'high', by where the mel energy sits."""
    high = patches[:, :, 48:].mean(axis=(1, 2)) > patches[:, :, :48].mean(axis=(1, 2))
    logits = np.zeros((patches.shape[0], 3), np.float32)
    logits[np.arange(patches.shape[0]), np.where(high, 2, 0)] = 2.7  # softmax: 0.8815
    return logits


@pytest.mark.parametrize(("smoothing", "early"), [
    ({"change_probability": 0.8}, True), ({"change_probability": 0.95}, False),
    ({"change_patches": 0}, False)], ids=["probability-0.8", "probability-0.95", "patches-0"])
async def test_change_probability_from_the_config_decides_an_early_change(
        tmp_path, smoothing, early) -> None:
    """config -> daemon -> predictions: a low tone, then a high one; patches agree at p = 0.88.

    At change_probability 0.8 the label moves as soon as the newest patches agree, with their
    own pooled probability (0.88); at 0.95, or with change_patches 0 (off), it waits for the
    window's pooling (lower).
    """
    import websockets

    from daemon.service import ModelHandle
    from models.patch_serving import PatchPooling
    from tests.daemon_helpers import read_until, write_two_tones_wav
    from tests.test_service import make_config, running

    serving = PatchPooling(band_encoder, 1.0, N_PATCHES, 3)
    model = ModelHandle(name="fake-patch", labels=["low", "mid", "high"], serving=serving)
    wav = write_two_tones_wav(tmp_path / "two.wav", (440, 4000), 36.0)
    config = make_config([{"name": "m", "kind": "url", "url": str(wav), "realtime": False}],
                         smoothing=smoothing,
                         history={"enabled": False})
    async with running(config, model) as service, websockets.connect(
            f"ws://127.0.0.1:{service.publisher.port}/") as ws:
        messages = await read_until(
            ws, lambda m: m["type"] == "prediction" and m["genre"] == "high", 60)
    first_high = messages[-1]
    assert [m["genre"] for m in messages if m["type"] == "prediction"][0] == "low"
    if early:
        assert first_high["confidence"] == pytest.approx(0.8815, abs=2e-4), first_high
    else:
        assert first_high["confidence"] < 0.8, first_high


def test_a_result_of_genred_default_shape_is_read_by_the_detector() -> None:
    """10 genres + no music, 10 patches: 11 window outputs, (10, 11) scores; another shape is
    refused with the shapes named."""
    rng = np.random.default_rng(3)
    scores = rng.normal(0.0, 1.0, (N_PATCHES, 11)).astype(np.float32)
    outputs = pooled_probabilities(scores).astype(np.float32)
    to_smooth, moved = ChangeDetector(10, N_PATCHES, STEP).update(outputs, scores, end_of(9),
                                                                  None)
    np.testing.assert_array_equal(to_smooth, outputs)
    assert not moved
    with pytest.raises(ValueError, match=r"\(10, 11\)"):
        ChangeDetector(10, N_PATCHES, STEP).update(outputs, scores[:, :10], end_of(9), None)
