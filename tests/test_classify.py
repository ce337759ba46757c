"""classify: slicing of decoded songs, output formatting, bad files (no model training here)."""

from __future__ import annotations

import logging

import numpy as np

from models.bfft import DEFAULT_PARAMS
from training.classify import (
    format_song,
    slice_images,
    slice_outcomes,
    song_result,
    song_verdict,
)

RATE_HZ = DEFAULT_PARAMS.sample_rate_hz


def test_long_song_skips_intro_and_outro():
    samples = np.random.default_rng(0).standard_normal(125 * RATE_HZ).astype(np.float32) * 0.1
    starts, images = slice_images(samples, 30.0, "long.wav")
    assert starts == [30 * RATE_HZ, 30 * RATE_HZ + DEFAULT_PARAMS.window_samples]
    assert images.shape == (2, 224, 224, 3) and images.dtype == np.uint8


def test_short_song_is_looped_to_a_window_with_a_warning(caplog):
    samples = np.zeros(10 * RATE_HZ, dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        starts, images = slice_images(samples, 30.0, "short.wav")
    assert starts == [0] and images.shape[0] == 1
    assert "looped to one window" in caplog.text


def test_hop_seconds_overlaps_slices():
    samples = np.zeros(50 * RATE_HZ, dtype=np.float32)
    starts, _ = slice_images(samples, 10.0, "x.wav")
    assert [s / RATE_HZ for s in starts] == [0.0, 10.0, 20.0]


def test_format_song_lists_verdict_and_slices():
    result = {"file": "a.ogg", "genre": "jazz", "outcome": "music", "votes": 2, "n_slices": 3,
              "mean_probabilities": {"jazz": 0.6, "rock": 0.4},
              "slices": [{"index": 0, "start_seconds": 30.0, "outcome": "jazz",
                          "probabilities": {"jazz": 0.7, "rock": 0.3}}]}
    text = format_song(result)
    assert text.splitlines()[0] == "a.ogg: jazz (2/3 slices, mean p 0.60)"
    assert "s00 @    30.0 s  jazz 0.70  rock 0.30" in text


def test_format_song_says_silent_and_no_music():
    slices = [{"index": 0, "start_seconds": 0.0, "outcome": "silent", "level_dbfs": -200.0,
               "no_music_probability": 0.1, "probabilities": {"jazz": 0.5, "rock": 0.5}}]
    result = {"file": "quiet.wav", "genre": None, "outcome": "silent", "votes": 1,
              "n_slices": 1, "mean_probabilities": {"jazz": 0.5, "rock": 0.5}, "slices": slices}
    text = format_song(result)
    assert text.splitlines()[0] == "quiet.wav: silent (1/1 slices)"
    assert "silent (-200 dBFS" in text and "jazz 0.50" not in text


def test_slice_outcomes_and_verdict_never_make_silence_a_genre():
    labels = ["jazz", "rock"]
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    no_music = np.array([0.0, 0.9, 0.1, 0.2])
    levels = np.array([-20.0, -20.0, -90.0, -20.0])
    outcomes = slice_outcomes(probabilities, no_music, levels, labels, silence_dbfs=-50.0)
    assert outcomes == ["jazz", "no music", "silent", "jazz"]
    assert song_verdict(outcomes, probabilities, labels) == ("jazz", 2)
    assert song_verdict(["no music", "no music", "jazz"], probabilities[:3], labels) == \
        ("no music", 2)
    assert song_verdict(["jazz", "jazz", "silent"], probabilities[:3], labels) == ("jazz", 2)
    assert song_verdict(["silent"] * 3, probabilities[:3], labels) == ("silent", 3)


def test_a_tied_vote_says_how_it_was_broken():
    labels = ["jazz", "rock"]
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6]])
    outcomes = slice_outcomes(probabilities, np.zeros(2), np.full(2, -20.0), labels, -50.0)
    assert song_verdict(outcomes, probabilities, labels) == ("jazz", 1)
    result = song_result("a.ogg", [0, 30 * RATE_HZ], probabilities, np.full(2, -20.0),
                         60 * RATE_HZ, labels, -50.0)
    assert result["tied_with"] == ["rock"]
    first = format_song(result).splitlines()[0]
    assert first == ("a.ogg: jazz (1/2 slices, mean p 0.65; tie with rock 0.35 broken by "
                     "the higher mean p)")
