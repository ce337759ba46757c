"""musicnn port: mel filterbank, patching, converted weights, outputs vs the original package."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.musicnn import melspec

FIXTURE = Path(__file__).parent / "data" / "musicnn_reference.npz"


def test_mel_scale_round_trip_and_break_point() -> None:
    """Slaney scale: linear to 1 kHz (15 mel), logarithmic above, invertible."""
    assert melspec.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert melspec.hz_to_mel(200.0) == pytest.approx(3.0)
    freqs = np.array([0.0, 60.0, 999.0, 1000.0, 4321.0, 8000.0])
    np.testing.assert_allclose(melspec.mel_to_hz(melspec.hz_to_mel(freqs)), freqs, rtol=1e-12)


def test_mel_filterbank_shape_normalisation_and_librosa_values() -> None:
    """96 x 257 Slaney-normalised triangles; values equal librosa.filters.mel's defaults."""
    bank = melspec.mel_filterbank()
    assert bank.shape == (96, 257) and bank.dtype == np.float32
    assert (bank >= 0).all() and (bank.sum(axis=1) > 0).all()
    bin_hz = 8000.0 / 256
    np.testing.assert_allclose(bank.sum(axis=1) * bin_hz, 1.0, atol=0.08)  # unit area in Hz
    centres = bank.argmax(axis=1)
    assert (np.diff(centres) >= 0).all()
    # golden values from librosa 0.11 filters.mel(sr=16000, n_fft=512, n_mels=96)
    assert bank[0, 1] == pytest.approx(0.031999223, rel=1e-5)
    np.testing.assert_allclose(bank[50, 57:61], [0.002688378, 0.011907576, 0.013077741,
                                                 0.004149506], rtol=1e-5)
    assert np.flatnonzero(bank[95]).tolist() == list(range(241, 256))


def test_patches_shape_hop_and_short_input() -> None:
    """30 s -> ten 3-s patches (1876 frames); overlap hop; < 3 s gives none."""
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.1, 30 * melspec.SAMPLE_RATE_HZ).astype(np.float32)
    spec = melspec.log_mel(samples)
    assert spec.shape == (1876, 96) and spec.dtype == np.float32 and np.isfinite(spec).all()
    patches = melspec.musicnn_patches(samples)
    assert patches.shape == (10, 187, 96)
    np.testing.assert_array_equal(patches[1], spec[187:374])
    assert melspec.musicnn_patches(samples, hop_frames=93).shape == (19, 187, 96)
    assert melspec.musicnn_patches(samples[:40000]).shape == (0, 187, 96)


def test_loud_input_stays_finite() -> None:
    """The float32 log never overflows (the package's float16 cast would give inf here)."""
    t = np.arange(3 * melspec.SAMPLE_RATE_HZ) / melspec.SAMPLE_RATE_HZ
    spec = melspec.log_mel(np.sin(2 * np.pi * 440.0 * t).astype(np.float32))
    assert np.isfinite(spec).all() and spec.max() > np.log10(65504.0)


@pytest.fixture(scope="module")
def msd_model():
    """The MSD_musicnn port with its converted weights."""
    from models.musicnn import load_musicnn

    return load_musicnn("MSD_musicnn")


def test_model_outputs_and_parameter_count(msd_model) -> None:
    """Dict outputs with the documented widths; every checkpoint weight is loaded."""
    from models.musicnn import EMBEDDING_DIMS

    out = msd_model.predict(np.zeros((2, 187, 96), np.float32), verbose=0)
    assert out["tags"].shape == (2, 50)
    for name, width in EMBEDDING_DIMS.items():
        assert out[name].shape == (2, width)
    assert msd_model.count_params() == 792079
    assert ((out["tags"] > 0) & (out["tags"] < 1)).all()


def _decode_16k(path: Path, seconds: float) -> np.ndarray:
    """ffmpeg decode to 16 kHz mono float32, as tools/musicnn/reference.py does."""
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path),
                          "-t", str(seconds), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def test_port_reproduces_package_outputs(msd_model, shared_data: Path, ffmpeg: str) -> None:
    """Front-end and network match the original package's graph on a GTZAN clip."""
    reference = np.load(FIXTURE)
    clip = shared_data / str(reference["clip"])
    if not clip.is_file():
        pytest.skip(f"{clip} is not present")
    samples = _decode_16k(clip, float(reference["seconds"]))
    patches = melspec.cut_patches(melspec.log_mel(samples, pad_mode="constant"))  # not lifted
    np.testing.assert_allclose(patches.mean(axis=1), reference["band_means"], atol=1e-4)
    out = msd_model.predict(patches, verbose=0)
    # float16 kernels: tags move by < 1e-3, the 200-d embedding by < 5e-3 (see README)
    np.testing.assert_allclose(out["tags"], reference["tags"], atol=2e-3)
    np.testing.assert_allclose(out["penultimate"], reference["penultimate"], atol=1e-2)


MSD_TAGS_OF_NOTE = {"blues": 26, "jazz": 9}
"""Indices of a few MSD tags (musicnn's configuration.MSD_LABELS order)."""


def test_vgg_port_shapes_weights_and_tags_on_real_music(shared_data: Path, ffmpeg: str) -> None:
    """MSD_vgg (the package's VGG tagger): documented widths, every weight loaded, and on
    GTZAN's first blues and jazz clips its own genre tag among its top 3 of 50
    (not verified against the package's graph; see models/musicnn/README.md)."""
    from models.musicnn import load_musicnn
    from models.musicnn.network import outputs_of

    model = load_musicnn("MSD_vgg")
    assert model.count_params() == 607030 and outputs_of("MSD_vgg")[0] == "tags"
    out = model.predict(np.zeros((2, 187, 96), np.float32), verbose=0)
    widths = {name: value.shape for name, value in out.items()}
    assert widths == {"tags": (2, 50), "pool5": (2, 256), "pool4_mean": (2, 128),
                      "pool4_max": (2, 128)}
    for genre, tag in (("blues", "blues"), ("jazz", "jazz")):
        clip = shared_data / "gtzan-mini" / genre / f"{genre}.00000.flac"
        if not clip.is_file():
            pytest.skip(f"{clip} is not present")
        patches = melspec.musicnn_patches(_decode_16k(clip, 30.0), pad_mode="constant")
        tags = model.predict(patches, verbose=0)["tags"].mean(axis=0)
        assert MSD_TAGS_OF_NOTE[tag] in np.argsort(-tags)[:3], (genre, np.argsort(-tags)[:5])
