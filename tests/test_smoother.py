"""Tests for daemon.smoother: EMA / moving-average math and label hysteresis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from daemon.smoother import SmoothedResult, Smoother, SmoothingConfig


def _raw(hysteresis_margin: float, hysteresis_hops: int) -> SmoothingConfig:
    """Config without smoothing (EMA alpha=1), so a test sees the hysteresis alone."""
    return SmoothingConfig(
        method="ema",
        alpha=1.0,
        hysteresis_margin=hysteresis_margin,
        hysteresis_hops=hysteresis_hops,
    )


def _feed(smoother: Smoother, rows: list[list[float]]) -> list[SmoothedResult]:
    return [smoother.update(np.array(row)) for row in rows]


def test_ema_matches_hand_computed_values() -> None:
    smoother = Smoother(3, SmoothingConfig(method="ema", alpha=0.25, hysteresis_hops=1))
    first, second, third = _feed(smoother, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(first.probabilities, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(second.probabilities, [0.75, 0.25, 0.0])
    # 0.25 * [0, 0, 1] + 0.75 * [0.75, 0.25, 0]
    np.testing.assert_allclose(third.probabilities, [0.5625, 0.1875, 0.25])
    assert third.label_index == 0
    assert third.confidence == pytest.approx(0.5625)


def test_moving_average_uses_last_window_hops() -> None:
    smoother = Smoother(2, SmoothingConfig(method="mean", window_hops=3, hysteresis_hops=1))
    results = _feed(smoother, [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    np.testing.assert_allclose(results[0].probabilities, [1.0, 0.0])
    np.testing.assert_allclose(results[1].probabilities, [0.5, 0.5])
    np.testing.assert_allclose(results[2].probabilities, [0.5, 0.5])
    # the first row has left the 3-hop window: mean of the last three rows
    np.testing.assert_allclose(results[3].probabilities, [0.7 / 3, 2.3 / 3])


def test_output_is_normalised_float_copy() -> None:
    smoother = Smoother(3, SmoothingConfig(method="ema", alpha=0.5))
    result = smoother.update(np.array([2.0, 1.0, 1.0], dtype=np.float32))
    assert result.probabilities.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(result.probabilities, [0.5, 0.25, 0.25])
    result.probabilities[:] = 0.0  # must not corrupt the smoother's state
    following = smoother.update(np.array([0.5, 0.25, 0.25]))
    np.testing.assert_allclose(following.probabilities, [0.5, 0.25, 0.25])


def test_first_label_is_taken_immediately() -> None:
    smoother = Smoother(4, SmoothingConfig(hysteresis_hops=5, hysteresis_margin=0.5))
    assert smoother.label_index is None
    result = smoother.update(np.array([0.1, 0.2, 0.4, 0.3]))
    assert (result.label_index, result.changed) == (2, True)
    assert result.confidence == pytest.approx(0.4)


def test_label_does_not_flicker_on_alternating_inputs() -> None:
    rows = [[0.6, 0.4], [0.4, 0.6]] * 10
    steady = _feed(Smoother(2, _raw(0.1, 2)), rows)
    assert [r.label_index for r in steady] == [0] * 20
    assert [r.changed for r in steady] == [True] + [False] * 19
    # sanity check of the test itself: without hysteresis the same input flickers
    naive = _feed(Smoother(2, _raw(0.0, 1)), rows)
    assert [r.label_index for r in naive] == [0, 1] * 10


@pytest.mark.parametrize("hysteresis_hops", [1, 2, 3, 5])
def test_switches_after_exactly_k_hops_above_margin(hysteresis_hops: int) -> None:
    config = _raw(0.2, hysteresis_hops)
    smoother = Smoother(2, config)
    smoother.update(np.array([0.9, 0.1]))
    results = _feed(smoother, [[0.3, 0.7]] * (hysteresis_hops + 2))
    labels = [r.label_index for r in results]
    assert labels == [0] * (hysteresis_hops - 1) + [1] * 3
    assert [r.changed for r in results].count(True) == 1
    assert results[hysteresis_hops - 1].changed
    # while the challenger is pending, confidence is the current label's probability
    if hysteresis_hops > 1:
        assert results[0].confidence == pytest.approx(0.3)
    assert results[-1].confidence == pytest.approx(0.7)


def test_lead_not_above_margin_never_switches() -> None:
    smoother = Smoother(2, _raw(0.1, 1))
    smoother.update(np.array([0.9, 0.1]))
    results = _feed(smoother, [[0.46, 0.54]] * 10)  # challenger leads by 0.08 only
    assert all(r.label_index == 0 and not r.changed for r in results)
    assert smoother.update(np.array([0.44, 0.56])).label_index == 1  # leads by 0.12


def test_interrupted_streak_starts_over() -> None:
    smoother = Smoother(2, _raw(0.1, 3))
    smoother.update(np.array([0.9, 0.1]))
    challenge, calm = [0.2, 0.8], [0.5, 0.5]
    results = _feed(smoother, [challenge, challenge, calm, challenge, challenge])
    assert all(r.label_index == 0 for r in results)
    assert smoother.update(np.array(challenge)).label_index == 1


def test_alternating_challengers_do_not_accumulate() -> None:
    smoother = Smoother(3, _raw(0.1, 2))
    smoother.update(np.array([0.8, 0.1, 0.1]))
    results = _feed(smoother, [[0.2, 0.6, 0.2], [0.2, 0.2, 0.6]] * 4)
    assert all(r.label_index == 0 for r in results)


def test_ema_smoothing_delays_switch() -> None:
    smoother = Smoother(2, SmoothingConfig(alpha=0.5, hysteresis_margin=0.0, hysteresis_hops=1))
    smoother.update(np.array([1.0, 0.0]))
    # smoothed label-1 probability: 0.5, 0.75 -> equal at hop 1, leads at hop 2
    first, second = _feed(smoother, [[0.0, 1.0], [0.0, 1.0]])
    assert (first.label_index, second.label_index) == (0, 1)
    assert second.changed


def test_reset_forgets_history_and_label() -> None:
    smoother = Smoother(2, SmoothingConfig(alpha=0.1, hysteresis_hops=4))
    _feed(smoother, [[0.9, 0.1]] * 5)
    smoother.reset()
    assert smoother.label_index is None
    result = smoother.update(np.array([0.2, 0.8]))
    np.testing.assert_allclose(result.probabilities, [0.2, 0.8])
    assert (result.label_index, result.changed) == (1, True)


def test_reset_clears_moving_average_window() -> None:
    smoother = Smoother(2, SmoothingConfig(method="mean", window_hops=4))
    _feed(smoother, [[1.0, 0.0]] * 4)
    smoother.reset()
    np.testing.assert_allclose(smoother.update(np.array([0.3, 0.7])).probabilities, [0.3, 0.7])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([0.5, 0.5], r"probabilities must have shape \(3,\), got \(2,\)"),
        ([[0.2, 0.3, 0.5]], r"probabilities must have shape \(3,\), got \(1, 3\)"),
        ([0.2, np.nan, 0.8], "probabilities contain NaN or infinity"),
        ([0.2, np.inf, 0.8], "probabilities contain NaN or infinity"),
        ([-0.1, 0.6, 0.5], "probabilities must be non-negative"),
        ([0.0, 0.0, 0.0], "probabilities sum to zero"),
    ],
)
def test_bad_probabilities_raise_and_leave_state_intact(bad: list[Any], message: str) -> None:
    smoother = Smoother(3, SmoothingConfig(alpha=0.5))
    smoother.update(np.array([0.6, 0.2, 0.2]))
    with pytest.raises(ValueError, match=f"^{message}$"):
        smoother.update(np.array(bad, dtype=np.float64))
    result = smoother.update(np.array([0.6, 0.2, 0.2]))
    np.testing.assert_allclose(result.probabilities, [0.6, 0.2, 0.2])


CONFIG_LIMITS = [  # field, values accepted at the edges, values refused, the rule
    ("method", ["ema", "mean"], ["median"], "must be one of ['ema', 'mean']"),
    ("alpha", [1e-9, 1.0], [0.0, 1.0000001], "must be in (0, 1]"),
    ("window_hops", [1], [0], "must be >= 1"),
    ("hysteresis_margin", [0.0, 0.999], [-0.001, 1.0], "must be in [0, 1)"),
    ("hysteresis_hops", [1], [0], "must be >= 1"),
]
CHANGE_LIMITS = [  # the change detector's keys, also under smoothing: (daemon/change.py)
    ("change_patches", [0, 10], [-1, 11], "must be in 0..10"),
    ("change_probability", [0.0, 1.0], [-0.001, 1.001], "must be in [0, 1]"),
]


@pytest.mark.parametrize(("field", "good", "bad", "rule"), CHANGE_LIMITS)
def test_change_limits_are_exact_and_errors_name_the_smoothing_key(
        field: str, good: list[Any], bad: list[Any], rule: str) -> None:
    from daemon.config import config_from_dict

    for value in good:
        assert getattr(config_from_dict({"smoothing": {field: value}}).change, field) == value
    for value in bad:
        with pytest.raises(ValueError) as error:
            config_from_dict({"smoothing": {field: value}})
        assert str(error.value) == f"smoothing.{field}: {rule}, got {value!r}"


@pytest.mark.parametrize(("field", "good", "bad", "rule"), CONFIG_LIMITS)
def test_config_limits_are_exact_and_errors_name_the_key(field: str, good: list[Any],
                                                          bad: list[Any], rule: str) -> None:
    for value in good:
        Smoother(3, SmoothingConfig(**{field: value}))
    for value in bad:
        with pytest.raises(ValueError) as error:
            Smoother(3, SmoothingConfig(**{field: value}))
        assert str(error.value) == f"smoothing.{field}: {rule}, got {value!r}"
        with pytest.raises(ValueError, match=rf"^sources\[0\]\.s\.{field}: "):
            SmoothingConfig(**{field: value}).validate("sources[0].s")


def test_one_label_is_enough_and_zero_is_refused() -> None:
    assert Smoother(1).update(np.array([3.0])).label_index == 0
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match=rf"^n_labels must be an int >= 1, got {bad!r}$"):
            Smoother(bad)


def test_default_config_when_none_is_given() -> None:
    assert Smoother(3).config == SmoothingConfig() == Smoother(3, None).config


def test_a_lead_of_exactly_the_margin_is_not_enough() -> None:
    """The challenger must lead by *more* than the margin (binary-exact values: 0.625 - 0.375)."""
    smoother = Smoother(2, _raw(0.25, 1))
    smoother.update(np.array([1.0, 0.0]))
    results = _feed(smoother, [[0.375, 0.625]] * 5)  # leads by exactly 0.25
    assert [r.label_index for r in results] == [0] * 5
    assert smoother.update(np.array([0.3125, 0.6875])).label_index == 1  # leads by 0.375


@pytest.mark.parametrize("method", ["ema", "mean"])
def test_unnormalised_and_float32_inputs_are_normalised_before_smoothing(method: str) -> None:
    """Each window counts by its distribution, whatever its total; the output is float64."""
    smoother = Smoother(2, SmoothingConfig(method=method, alpha=0.5, window_hops=2))
    smoother.update(np.array([8.0, 0.0], dtype=np.float32))
    result = smoother.update(np.array([0.0, 0.5], dtype=np.float32))
    assert result.probabilities.dtype == np.float64
    np.testing.assert_allclose(result.probabilities, [0.5, 0.5], rtol=0, atol=1e-12)
