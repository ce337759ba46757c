"""Quiet patches are lifted towards the level of quiet music; louder ones are left exactly."""

from __future__ import annotations

import numpy as np
import pytest

from models.musicnn.melspec import (
    QUIET_MAX_GAIN_DB,
    QUIET_REFERENCE_MEL,
    lift_quiet,
    log_mel,
)
from models.musicnn.streaming import StreamingMusicnnMel, stream_patches
from models.resample import resample


def log_mel_of(mel: np.ndarray) -> np.ndarray:
    """log10(10000 mel + 1), as the front-end computes it."""
    return np.log10(10000.0 * mel + 1.0).astype(np.float32)


def mean_mel(patches: np.ndarray) -> np.ndarray:
    """Each patch's mean mel power."""
    return ((10.0 ** patches.astype(np.float64) - 1.0) / 10000.0).mean(axis=(1, 2))


@pytest.fixture
def mel_shape() -> np.ndarray:
    """A random spectral shape with mean 1 (187 x 96)."""
    shape = np.random.default_rng(0).gamma(0.5, 2.0, (187, 96))
    return shape / shape.mean()


def test_patches_at_or_above_the_reference_are_returned_bit_for_bit(mel_shape):
    """Music at its own level (mean mel >= the reference) is never touched."""
    patches = log_mel_of(np.stack([mel_shape * 0.26, mel_shape * QUIET_REFERENCE_MEL * 1.001]))
    lifted = lift_quiet(patches)
    assert lifted is patches
    np.testing.assert_array_equal(lifted, patches)


def test_a_quiet_patch_is_lifted_to_the_reference_and_keeps_its_shape(mel_shape):
    """20 dB below the reference: raised by 20 dB in mel power, spectral shape unchanged."""
    quiet = log_mel_of(mel_shape * QUIET_REFERENCE_MEL / 100.0)[np.newaxis]
    lifted = lift_quiet(quiet)
    assert mean_mel(lifted)[0] == pytest.approx(QUIET_REFERENCE_MEL, rel=1e-4)
    np.testing.assert_allclose(lifted[0], log_mel_of(mel_shape * QUIET_REFERENCE_MEL),
                               atol=1e-5)


def test_the_lift_is_capped_and_silence_stays_silence(mel_shape):
    """A patch 50 dB down gains only QUIET_MAX_GAIN_DB; digital silence stays zero; a batch
    lifts only its quiet patches."""
    very_quiet = mel_shape * QUIET_REFERENCE_MEL * 1e-5
    loud = log_mel_of(mel_shape * 0.5)
    patches = np.stack([log_mel_of(very_quiet), np.zeros((187, 96), np.float32), loud])
    lifted = lift_quiet(patches)
    expected = mean_mel(patches[:1])[0] * 10 ** (QUIET_MAX_GAIN_DB / 10)
    assert mean_mel(lifted)[0] == pytest.approx(expected, rel=2e-5)
    np.testing.assert_array_equal(lifted[1], 0.0)
    np.testing.assert_array_equal(lifted[2], loud)


def test_quiet_audio_is_lifted_alike_offline_and_streaming():
    """Noise 50 dB down: the offline patches and the streamed ones are the same lifted patches
    (the daemon and genred classify hear quiet music alike)."""
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(44100 * 9) * 0.1 * 10 ** (-50 / 20)).astype(np.float32)
    offline = stream_patches(audio)
    stream = StreamingMusicnnMel()
    streamed = np.concatenate([stream.push(audio[i:i + 4410]).patches
                               for i in range(0, audio.size, 4410)])
    assert streamed.shape[0] == offline.shape[0] == 3
    np.testing.assert_allclose(streamed, offline, atol=5e-4)
    unlifted = log_mel(resample(audio, 44100, 16000))[: 3 * 187].reshape(3, 187, 96)
    np.testing.assert_allclose(mean_mel(offline) / mean_mel(unlifted),
                               10 ** (QUIET_MAX_GAIN_DB / 10), rtol=0.01)


def test_a_patch_exactly_at_the_reference_is_not_lifted(mel_shape, monkeypatch):
    """The reference itself counts as loud enough: such a patch is returned as it is."""
    from models.musicnn import melspec

    patch = log_mel_of(mel_shape * 0.01)[np.newaxis]
    monkeypatch.setattr(melspec, "QUIET_REFERENCE_MEL", float(mean_mel(patch)[0]))
    assert melspec.lift_quiet(patch) is patch
