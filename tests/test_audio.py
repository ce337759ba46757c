"""Audio decoding through ffmpeg: formats, rates, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from models.audio import AudioDecodeError, load_audio
from tests.conftest import make_tone_file


@pytest.mark.parametrize(
    ("suffix", "extra"),
    [(".wav", ()), (".au", ()), (".flac", ()), (".mp3", ()), (".ogg", ("-c:a", "libvorbis")),
     (".m4a", ("-c:a", "aac"))],
)
def test_formats_decode_to_contract_rate(tmp_path, ffmpeg, suffix, extra):
    path = make_tone_file(tmp_path / f"tone{suffix}", 440, 2.0, 22050, extra)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.shape[0] - 2 * 44100) < 44100 * 0.1  # codec padding allowed
    spectrum = np.abs(np.fft.rfft(samples[4410:48510]))
    assert abs(np.argmax(spectrum) * 44100 / 44100 - 440) <= 2


def test_stereo_is_mixed_to_mono(tmp_path, ffmpeg):
    path = make_tone_file(tmp_path / "stereo.wav", 1000, 1.0, 48000, ("-ac", "2"))
    samples = load_audio(path)
    assert samples.ndim == 1 and abs(samples.shape[0] - 44100) <= 2


def test_missing_file_names_it(tmp_path):
    with pytest.raises(AudioDecodeError, match="nope.wav.*no such file"):
        load_audio(tmp_path / "nope.wav")


def test_non_audio_named_wav(tmp_path, ffmpeg):
    fake = tmp_path / "fake.wav"
    fake.write_text("this is not audio\n" * 100)
    with pytest.raises(AudioDecodeError, match="fake.wav"):
        load_audio(fake)


def test_empty_file(tmp_path, ffmpeg):
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty.flac"):
        load_audio(empty)


def test_zero_length_audio(tmp_path, ffmpeg):
    import scipy.io.wavfile

    path = tmp_path / "zero.wav"
    scipy.io.wavfile.write(path, 22050, np.zeros(0, np.int16))
    with pytest.raises(AudioDecodeError, match="no audio samples"):
        load_audio(path)


def test_real_gtzan_clip(shared_data, ffmpeg):
    samples = load_audio(shared_data / "gtzan-mini" / "jazz" / "jazz.00000.flac")
    assert 29.9 < samples.shape[0] / 44100 < 30.1
    assert 0.05 < np.abs(samples).max() <= 1.0
