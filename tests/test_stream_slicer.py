"""Streamed slicing and decoding equal the whole-file versions (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from models.audio import AudioDecodeError, load_audio
from models.audio_stream import decode_chunks, probe_stream
from tests.conftest import make_tone_file
from training.slicing import plan_slices
from training.stream_slicer import StreamSlicer

RATE_HZ = 100
WINDOW = 30 * RATE_HZ


def _stream(samples: np.ndarray, slicer: StreamSlicer, chunk_sizes: list[int]) -> list:
    """Every window the slicer releases for ``samples`` fed in the given chunk sizes."""
    windows, position, index = [], 0, 0
    while position < samples.size:
        size = chunk_sizes[index % len(chunk_sizes)]
        windows += slicer.push(samples[position:position + size])
        position, index = position + size, index + 1
    return windows + slicer.finish()


@pytest.mark.parametrize("seconds", [0.5, 10, 28.9, 29.5, 30, 59.99, 89.99, 90, 125.3, 361])
@pytest.mark.parametrize("hop_seconds", [30, 10, 45])
@pytest.mark.parametrize("chunks", [[1], [7, 1000], [4410], [123, 5000, 17]])
def test_streamed_windows_equal_the_plan_on_the_whole_song(seconds, hop_seconds, chunks):
    samples = np.arange(round(seconds * RATE_HZ), dtype=np.float32)
    hop = hop_seconds * RATE_HZ
    if chunks == [1] and samples.size > 3000:
        chunks = [37]  # same property, fewer Python calls
    for allow_short in (True, False):
        slicer = StreamSlicer(hop, WINDOW, RATE_HZ, allow_short=allow_short)
        windows = _stream(samples, slicer, chunks)
        plan = plan_slices(samples.size, RATE_HZ, WINDOW, hop, allow_short=allow_short)
        assert [start for start, _ in windows] == list(plan.starts)
        assert slicer.plan is not None and slicer.plan.starts == plan.starts
        assert (slicer.plan.padded, slicer.plan.too_short) == (plan.padded, plan.too_short)
        for start, window in windows:
            np.testing.assert_array_equal(window, samples[start:start + WINDOW])


def test_memory_kept_is_bounded_by_window_and_edge():
    slicer = StreamSlicer(WINDOW, WINDOW, RATE_HZ)
    most_kept = 0
    for _ in range(3600):  # an hour, one second at a time
        slicer.push(np.zeros(RATE_HZ, np.float32))
        most_kept = max(most_kept, sum(piece.size for piece in slicer._pieces))
    assert most_kept <= 91 * RATE_HZ  # the first 90 s decide the intro rule; later 60 s + 1 s
    assert len(slicer.finish()) == 0 and len(slicer.plan.starts) == 118


@pytest.mark.parametrize(("rate_hz", "suffix"), [(22050, ".flac"), (48000, ".wav"),
                                                 (44100, ".ogg")])
def test_decoded_chunks_equal_the_whole_file_decode(tmp_path, ffmpeg, rate_hz, suffix):
    extra = ("-c:a", "libvorbis") if suffix == ".ogg" else ()
    path = make_tone_file(tmp_path / f"tone{suffix}", 440, 12.3, rate_hz, extra)
    whole = load_audio(path)
    streamed = np.concatenate(list(decode_chunks(path, chunk_seconds=0.37)))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    info = probe_stream(str(path))
    assert info.sample_rate_hz == rate_hz and abs(info.duration_seconds - 12.3) < 0.1


def test_decode_errors_name_the_source(tmp_path, ffmpeg):
    with pytest.raises(AudioDecodeError, match="no such file"):
        list(decode_chunks(tmp_path / "missing.wav"))
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioDecodeError, match="fake.mp3"):
        list(decode_chunks(fake))
