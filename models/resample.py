"""Resampling to and from the stream rate: offline (resample_poly) and its streaming twin."""

from __future__ import annotations

from math import gcd

import numpy as np

SAMPLE_RATE_HZ = 44100
"""The rate every source delivers (mono float32); front-ends resample from it."""


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) of mono audio between two rates."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
    if from_hz == to_hz:
        return samples
    divisor = gcd(int(from_hz), int(to_hz))
    up, down = int(to_hz) // divisor, int(from_hz) // divisor
    import scipy.signal  # on first use: importing scipy.signal takes ~0.5 s

    return scipy.signal.resample_poly(samples, up, down).astype(np.float32)


class StreamingResampler:
    """Resamples a stream chunk by chunk; output equals ``resample_poly`` on the whole input.

    Uses resample_poly's own filter (Kaiser-windowed sinc, beta 5, half length
    ``10 * max(up, down)`` taps at the upsampled rate) and its alignment, so output sample
    ``k`` is ``sum_n x[n] * h[k * down + half_len - n * up]``. An output is produced as soon
    as every input it needs has arrived (a delay of about ``half_len / up`` input samples);
    :meth:`flush` emits the tail that resample_poly computes with zero padding.
    """

    def __init__(self, from_hz: int, to_hz: int) -> None:
        if from_hz <= 0 or to_hz <= 0:
            raise ValueError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
        divisor = gcd(int(from_hz), int(to_hz))
        self.from_hz = int(from_hz)
        """Input rate in Hz."""
        self.to_hz = int(to_hz)
        """Output rate in Hz."""
        self.up = self.to_hz // divisor
        self.down = self.from_hz // divisor
        max_rate = max(self.up, self.down)
        self._half_len = 10 * max_rate
        if max_rate == 1:
            taps = np.ones(1)  # equal rates: pass-through, no filter
        else:
            import scipy.signal  # on first use: importing scipy.signal takes ~0.5 s

            taps = scipy.signal.firwin(
                2 * self._half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)
            )
        self._n_taps = -(-taps.size // self.up)
        padded = np.zeros(self._n_taps * self.up)
        padded[: taps.size] = taps * self.up
        # _phases[p, i] = h[p + i * up]: the taps that meet x[n_max - i] at phase p.
        self._phases = padded.reshape(self._n_taps, self.up).T.copy()
        self.reset()

    @property
    def delay_input_samples(self) -> int:
        """Input samples an output waits for beyond its own time (the streaming latency)."""
        return 0 if self.up == self.down else self._half_len // self.up + 1

    def reset(self) -> None:
        """Forget all input: the next sample is the start of a new stream."""
        self._history = np.zeros(self._n_taps - 1, dtype=np.float64)
        self._history_start = -(self._n_taps - 1)
        self._n_in = 0
        self._next_output = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed mono input samples; returns every output sample now computable (float32)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.up == self.down:
            return samples.copy()
        self._history = np.concatenate([self._history, samples.astype(np.float64)])
        self._n_in += samples.size
        # Output k needs input up to (k * down + half_len) // up, i.e. k * down + half_len
        # < n_in * up.
        end = -((self._half_len - self._n_in * self.up) // self.down)
        return self._emit(max(end, self._next_output))

    def flush(self) -> np.ndarray:
        """Emit the remaining outputs (input zero-padded like resample_poly), then reset."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.float32)
        n_out = -(-self._n_in * self.up // self.down)
        if n_out <= self._next_output:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        last_needed = ((n_out - 1) * self.down + self._half_len) // self.up
        history_end = self._history_start + self._history.size
        padding = np.zeros(max(0, last_needed + 1 - history_end))
        self._history = np.concatenate([self._history, padding])
        tail = self._emit(n_out)
        self.reset()
        return tail

    def _emit(self, end: int) -> np.ndarray:
        """Outputs ``_next_output .. end - 1`` from the buffered input; trims the buffer.

        Outputs ``up`` apart share a filter phase and step ``down`` inputs, so each of the
        ``up`` residue classes is one strided view of the input times one tap vector.
        """
        start = self._next_output
        result = np.empty(max(0, end - start), dtype=np.float64)
        if result.size:
            windows = np.lib.stride_tricks.sliding_window_view(self._history, self._n_taps)
            for first in range(start, min(start + self.up, end)):
                position = first * self.down + self._half_len
                newest, phase = divmod(position, self.up)
                base = newest - self._history_start - (self._n_taps - 1)
                count = -(-(end - first) // self.up)
                rows = windows[base:base + (count - 1) * self.down + 1:self.down]
                result[first - start::self.up] = rows @ self._phases[phase, ::-1]
        self._next_output = end
        oldest_needed = (end * self.down + self._half_len) // self.up - (self._n_taps - 1)
        drop = min(max(0, oldest_needed - self._history_start), self._history.size)
        if drop:
            self._history = self._history[drop:]
            self._history_start += drop
        return result.astype(np.float32)
