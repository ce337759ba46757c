"""Incremental musicnn-mel front-end: 44.1 kHz chunks -> 3-s log-mel patches, each computed once.

The stream is seen as one signal from its first sample. Its patches lie on a fixed grid:

* ``y = resample_poly(x, 160, 441)`` (44.1 -> 16 kHz, the contract's resampler, streamed by
  :class:`~models.musicnn.stream_resample.StreamResampler`, equal within float32 rounding);
  ``y[j]`` is final once input ``x[(441 j + 4410) // 160]`` has arrived (the filter's half
  length is 4410 taps at the upsampled rate: 27.6 input samples = 0.63 ms of look-ahead);
* centred STFT frames of ``y`` (n_fft 512, hop 256): frame ``f`` covers ``y[256 f - 256 ..
  256 f + 255]``, reflected at the stream start like ``np.pad(y, 256, "reflect")``;
* patch ``k`` = frames ``187 k .. 187 k + 186`` (non-overlapping, as ``musicnn_patches``); it
  needs ``y`` up to ``47872 (k + 1) - 1`` and is emitted as soon as that sample is final.

Rounding: a patch is 187 x 256 = 47872 samples at 16 kHz = 2.992 s = 47872 x 441 / 160 =
131,947.2 samples at 44.1 kHz, not a whole number: patch ends fall on whole 44.1 kHz samples
every 5 patches (659,736 samples = 14.960 s); 10 patches = 1,319,472 samples = 29.920 s. The
resampler maps every 441 inputs to 160 outputs, one per filter phase; a patch starts at output
47872 k, i.e. phase 47872 k mod 160 = 32 k mod 160: patches see the same phases every 5. The
44.1 kHz sample count at which patch ``k`` is emitted is :func:`patch_ready_samples`, its own
audio starts at :func:`patch_start_sample`; a hop is rounded to whole patches
(:func:`hop_patches`: a 2-s hop becomes 1 patch = 2.992 s), as BFFT hops are to whole bins.

Offline reference (:func:`stream_patches`): the same computation on the whole signal
(``musicnn_patches(resample(x), pad_mode="reflect")``), keeping the patches whose samples do not
depend on the signal's end. The streaming front-end equals it within float rounding for any
chunking. A window cut out of the stream and computed alone (``window_patches``) differs from
it only in its first two frames when the window starts on a grid point (its own resampler and
reflect padding at the cut), and is on another grid otherwise.

Use per source and hop (a window = the newest 10 patches, due every ``hop_patches(hop_seconds)``
new patches; see models/musicnn/patch_cache.py)::

    frontend, cache = StreamingMusicnnMel(), PatchCache(n_patches=10)
    new = frontend.push(chunk)                      # event loop, ~0.5 ms per 2 s of audio
    cache.add(new.first_index, new.patches)         # event loop, no work
    encode_pending(caches, encoder.predict_on_batch)  # inference thread: new patches only
    probabilities = head(cache.pooled()) if cache.ready else None

Cost: frames are computed ``frame_batch`` (32 = 0.51 s) at a time and when a patch completes;
about 0.5 ms of CPU per 2-s hop with 0.1-s chunks (bench/musicnn_streaming.py).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from math import gcd

import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse

from models.musicnn.melspec import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE_HZ,
    lift_quiet,
    mel_filterbank,
    musicnn_patches,
)
from models.musicnn.stream_resample import SampleBuffer, StreamResampler, inputs_for_outputs
from models.resample import SAMPLE_RATE_HZ as INPUT_RATE_HZ
from models.resample import resample

_LOGGER = logging.getLogger(__name__)

PATCH_SAMPLES_16K = PATCH_FRAMES * HOP_LENGTH
"""16 kHz samples per patch (47872 = 2.992 s)."""
PATCH_SECONDS = PATCH_SAMPLES_16K / SAMPLE_RATE_HZ
"""Duration of a patch and of the grid step (2.992 s)."""
_HALF = N_FFT // 2
_NO_PATCHES = np.zeros((0, PATCH_FRAMES, N_MELS), np.float32)
_NO_PATCHES.flags.writeable = False


@dataclass(frozen=True)
class NewPatches:
    """Patches a push completed, with their index on the stream's patch grid."""

    first_index: int
    """Grid index of ``patches[0]`` (patch ``k`` starts at 2.992 k s of the stream)."""
    patches: np.ndarray
    """(n, 187, 96) float32 log-mel patches, oldest first; n may be 0."""

    @property
    def indices(self) -> range:
        """Grid indices of the patches."""
        return range(self.first_index, self.first_index + self.patches.shape[0])


class StreamingMusicnnMel:
    """44.1 kHz mono chunks -> musicnn log-mel patches on the stream's grid, each computed once."""

    def __init__(self, input_rate_hz: int = INPUT_RATE_HZ, frame_batch: int = 32,
                 keep_patches: int = 10) -> None:
        self.input_rate_hz = int(input_rate_hz)
        self.frame_batch = max(1, int(frame_batch))
        """Frames computed together (32 = 0.51 s); a patch is still emitted when it completes."""
        self._resampler = StreamResampler(self.input_rate_hz, SAMPLE_RATE_HZ)
        self._y = SampleBuffer()
        self._window = scipy.signal.get_window("hann", N_FFT, fftbins=True).astype(np.float32)
        self._filterbank = scipy.sparse.csr_matrix(mel_filterbank())
        """Sparse (502 of 96 x 257 weights): no BLAS thread pool on the event loop, whose
        spinning threads made the dense product 7 ms instead of 0.1 ms beside TensorFlow."""
        self._frames = np.zeros((PATCH_FRAMES, N_MELS), dtype=np.float32)
        self.n_frames_total = 0
        """Log-mel frames computed since the start."""
        self.recent_patches: deque[np.ndarray] = deque(maxlen=keep_patches)
        """The newest ``keep_patches`` patches as float16, oldest first (the daemon's picture of
        what a patch model sees; 359 kB for 10)."""
        self._next_run_at = 0
        self._schedule()

    @property
    def n_samples_total(self) -> int:
        """Input samples received since the start."""
        return self._resampler.n_in

    @property
    def n_patches_total(self) -> int:
        """Patches emitted since the start (the next patch's grid index)."""
        return self.n_frames_total // PATCH_FRAMES

    def push(self, samples: np.ndarray) -> NewPatches:
        """Feed mono float samples (any length); returns the patches they complete."""
        first_index = self.n_patches_total
        self._resampler.x.append(np.asarray(samples, dtype=np.float32).reshape(-1))
        if self._resampler.n_in < self._next_run_at:
            return NewPatches(first_index, _NO_PATCHES)
        self._y.append(self._resampler.run())
        patches = self._mel_frames()
        self._schedule()
        return NewPatches(first_index, patches)

    def _schedule(self) -> None:
        """Next run: when frame_batch more frames, or the current patch's last, can be made."""
        patch_end = PATCH_FRAMES * (self.n_patches_total + 1)
        n_frames = min(self.n_frames_total + self.frame_batch, patch_end)
        n_resampled = HOP_LENGTH * n_frames + (n_frames == 1)  # frame 0 reflects y[1..256]
        self._next_run_at = self._resampler.inputs_for(n_resampled)

    def _mel_frames(self) -> np.ndarray:
        """Compute the frames the resampled samples complete; return the patches they fill."""
        n_y = self._y.end
        n_available = n_y // HOP_LENGTH if n_y > _HALF else 0
        first = self.n_frames_total
        if n_available <= first:
            return _NO_PATCHES
        frames = []
        if first == 0:  # frame 0: the stream start reflected, as np.pad(..., "reflect")
            head = self._y.view(0, _HALF + 1)
            frames.append(np.concatenate([head[:0:-1], head[:_HALF]])[np.newaxis])
            first = 1
        if n_available > first:
            tail = self._y.view(HOP_LENGTH * (first - 1), HOP_LENGTH * n_available)
            frames.append(np.lib.stride_tricks.sliding_window_view(tail, N_FFT)[::HOP_LENGTH])
        log_mel = self._log_mel(np.concatenate(frames))
        self._y.drop_before(HOP_LENGTH * (n_available - 1))
        return self._collect(log_mel)

    def _log_mel(self, frames: np.ndarray) -> np.ndarray:
        """(n, 512) frames -> (n, 96) log10(10000 * mel + 1), as melspec.log_mel."""
        spectrum = scipy.fft.rfft(frames * self._window, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        mel = np.asarray((self._filterbank @ power.T).T)
        return np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)

    def _collect(self, log_mel: np.ndarray) -> np.ndarray:
        """Append frames to the current patch; return the completed patches."""
        done = []
        offset = 0
        while offset < log_mel.shape[0]:
            slot = self.n_frames_total % PATCH_FRAMES
            take = min(PATCH_FRAMES - slot, log_mel.shape[0] - offset)
            self._frames[slot:slot + take] = log_mel[offset:offset + take]
            offset += take
            self.n_frames_total += take
            if slot + take == PATCH_FRAMES:
                done.append(lift_quiet(self._frames[np.newaxis])[0].copy())
                self.recent_patches.append(done[-1].astype(np.float16))
        return np.stack(done) if done else _NO_PATCHES


def patch_ready_samples(patch_index: int, input_rate_hz: int = INPUT_RATE_HZ) -> int:
    """Input samples after which patch ``patch_index`` has been emitted."""
    divisor = gcd(int(input_rate_hz), SAMPLE_RATE_HZ)
    up, down = SAMPLE_RATE_HZ // divisor, int(input_rate_hz) // divisor
    return inputs_for_outputs(PATCH_SAMPLES_16K * (patch_index + 1), up, down)


def patch_start_sample(patch_index: int, input_rate_hz: int = INPUT_RATE_HZ) -> int:
    """First input sample of patch ``patch_index``'s own 2.992 s (rounded down)."""
    return PATCH_SAMPLES_16K * patch_index * int(input_rate_hz) // SAMPLE_RATE_HZ


def hop_patches(hop_seconds: float) -> int:
    """A hop rounded to whole patches (>= 1): windows are due when patches complete."""
    return max(1, round(hop_seconds / PATCH_SECONDS))


def stream_patches(samples: np.ndarray, input_rate_hz: int = INPUT_RATE_HZ) -> np.ndarray:
    """Offline reference: the grid's patches of a whole signal that a stream would emit."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    patches = musicnn_patches(resample(samples, int(input_rate_hz), SAMPLE_RATE_HZ),
                              pad_mode="reflect")
    n_ready = 0
    while n_ready < patches.shape[0] and \
            patch_ready_samples(n_ready, input_rate_hz) <= samples.shape[0]:
        n_ready += 1
    return patches[:n_ready]
