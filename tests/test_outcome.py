"""models/outcome.py: window results, the no-music column, and the RMS level."""

from __future__ import annotations

import numpy as np
import pytest

from models.outcome import (
    NO_MUSIC_THRESHOLD,
    WindowResult,
    check_results,
    results_from_rows,
    rms_dbfs,
    split_outputs,
)


def test_gone_stale_is_all_nan_float32_with_no_patch_scores():
    """A dropped window's result: n_outputs NaNs, float32, stale, no patch scores."""
    result = WindowResult.gone_stale(4)
    assert result.stale is True and result.patch_scores is None
    assert result.outputs.shape == (4,) and result.outputs.dtype == np.float32
    assert np.isnan(result.outputs).all()


def test_a_fresh_result_is_not_stale_by_default():
    """WindowResult's defaults: no patch scores, not stale."""
    result = WindowResult(np.ones(3, np.float32))
    assert result.patch_scores is None and result.stale is False


def test_results_from_rows_are_float32_and_only_all_nan_rows_are_stale():
    """One result per row, float32; a row is stale only when every value is NaN."""
    rows = np.array([[0.25, 0.75], [np.nan, np.nan], [np.nan, 0.5]], dtype=np.float64)
    results = results_from_rows(rows)
    assert [r.stale for r in results] == [False, True, False]
    assert all(r.outputs.dtype == np.float32 and r.patch_scores is None for r in results)
    np.testing.assert_array_equal(results[0].outputs, np.array([0.25, 0.75], np.float32))
    assert results_from_rows(np.zeros((0, 3))) == []


@pytest.mark.parametrize("shape", [(3,), (1, 2, 3)])
def test_results_from_rows_refuses_other_than_two_dimensions(shape):
    """Outputs of any other rank name their shape."""
    with pytest.raises(ValueError) as error:
        results_from_rows(np.zeros(shape))
    assert str(error.value) == f"model outputs have shape {shape}; expected (N, n_outputs)"


def test_check_results_passes_one_result_per_window_through():
    """The right number of WindowResults comes back as a list, in order."""
    results = (WindowResult(np.zeros(2, np.float32)), WindowResult(np.ones(2, np.float32)))
    checked = check_results(results, 2)
    assert isinstance(checked, list) and checked == list(results)
    assert check_results(iter(results), 2) == list(results)  # an iterator is read once


@pytest.mark.parametrize(("count", "n_windows"), [(1, 2), (3, 2), (0, 1)])
def test_check_results_refuses_a_wrong_count(count, n_windows):
    """Fewer or more results than windows: a ValueError naming both counts."""
    results = [WindowResult(np.zeros(2, np.float32))] * count
    with pytest.raises(ValueError) as error:
        check_results(results, n_windows)
    assert str(error.value) == (f"serving gave {count} results for a batch of {n_windows} "
                                f"windows; expected one WindowResult per window")


def test_check_results_refuses_anything_but_window_results():
    """The right count of something else (a bare array) is refused too."""
    with pytest.raises(ValueError, match="serving gave 2 results for a batch of 2 windows"):
        check_results([WindowResult(np.zeros(2, np.float32)), np.zeros(2)], 2)


def test_split_outputs_without_a_no_music_column():
    """n_labels columns: the genres unchanged (float32), no music 0 for every row."""
    outputs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=np.float64)
    genres, no_music = split_outputs(outputs, 3)
    assert genres.dtype == np.float32 and no_music.dtype == np.float32
    np.testing.assert_array_equal(genres, outputs.astype(np.float32))
    np.testing.assert_array_equal(no_music, np.zeros(2, np.float32))


def test_split_outputs_renormalises_each_row_over_the_genres():
    """n_labels + 1 columns: the last is no music; each row's genres then sum to 1."""
    outputs = np.array([[0.1, 0.3, 0.6], [0.2, 0.6, 0.2]], dtype=np.float32)
    genres, no_music = split_outputs(outputs, 2)
    np.testing.assert_allclose(genres, [[0.25, 0.75], [0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(no_music, [0.6, 0.2], rtol=1e-6)
    assert genres.shape == (2, 2) and no_music.shape == (2,)


def test_split_outputs_of_rows_with_different_totals():
    """Rows are renormalised one by one, not by the batch's total (3 rows, 2 labels)."""
    outputs = np.array([[0.45, 0.45, 0.1], [0.1, 0.3, 0.6], [0.2, 0.0, 0.8]], np.float32)
    genres, _ = split_outputs(outputs, 2)
    np.testing.assert_allclose(genres, [[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]], rtol=1e-6)


def test_split_outputs_of_all_no_music_stays_finite():
    """Genres that are all 0 (certain no music) divide by a tiny floor, not by 0."""
    genres, no_music = split_outputs(np.array([[0.0, 0.0, 1.0]], np.float32), 2)
    np.testing.assert_array_equal(genres, [[0.0, 0.0]])
    assert no_music[0] == 1.0


def test_split_outputs_keeps_tiny_genre_totals_renormalised():
    """Genres summing to 1e-6 (near-certain no music) still renormalise to a distribution."""
    outputs = np.array([[2.5e-7, 7.5e-7, 1.0 - 1e-6]], np.float32)
    genres, _ = split_outputs(outputs, 2)
    np.testing.assert_allclose(genres, [[0.25, 0.75]], rtol=1e-5)


@pytest.mark.parametrize("n_columns", [1, 4, 5])
def test_split_outputs_refuses_other_column_counts(n_columns):
    """Neither n_labels nor n_labels + 1 columns: a ValueError naming both."""
    with pytest.raises(ValueError) as error:
        split_outputs(np.zeros((2, n_columns)), 2)
    assert str(error.value) == f"model gave {n_columns} outputs for 2 labels"


def test_no_music_threshold_is_one_half():
    """The documented cut: p(no music) >= 0.5 is no music."""
    assert NO_MUSIC_THRESHOLD == 0.5


@pytest.mark.parametrize(("samples", "expected"), [
    (np.ones(8, np.float32), 0.0),
    (np.full(8, 0.5, np.float32), -6.0206),
    (np.full(8, -0.1, np.float32), -20.0),
    (np.array([1.0, -1.0, 0.0, 0.0], np.float32), -3.0103),
])
def test_rms_dbfs_of_known_levels(samples, expected):
    """Full scale is 0 dB; the level is 10 log10 of the mean square."""
    assert rms_dbfs(samples) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("samples", [np.zeros(16, np.float32), np.zeros(0, np.float32)])
def test_rms_dbfs_of_silence_and_of_nothing_is_the_floor(samples):
    """Digital silence and an empty buffer are -200 dB exactly (never -inf or NaN)."""
    assert rms_dbfs(samples) == -200.0


def test_rms_dbfs_adds_1e_20_to_the_power():
    """The floor comes from adding 1e-20 to the mean square: a power of 1e-20 reads -197 dB."""
    assert rms_dbfs(np.full(4, 1e-10)) == pytest.approx(-196.9897, abs=1e-3)
    assert rms_dbfs(np.full(4, 1e-9)) == pytest.approx(-179.9568, abs=1e-3)


def test_rms_dbfs_squares_in_float64():
    """Large float32 samples do not overflow: their squares are taken in float64."""
    assert rms_dbfs(np.full(4, 1e20, np.float32)) == pytest.approx(400.0, abs=1e-3)
    assert rms_dbfs(np.full(4, 30000, np.int16)) == pytest.approx(89.542, abs=1e-3)
