"""Front-end benchmark: offline BFFT speed vs real time on one core, streaming column cost.

Run: .venv/bin/python -m bench.frontend [--repeats 30]  (writes bench/results/frontend.json;
librosa's melspectrogram is compared when the bench extra is installed)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: must be set before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from models.bfft import DEFAULT_PARAMS, StreamingBfft, bfft_image  # noqa: E402


def music_like(n_samples: int, seed: int = 0) -> np.ndarray:
    """Deterministic test audio: tones plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / DEFAULT_PARAMS.sample_rate_hz
    tones = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110, 440, 1250, 3300))
    return (tones + 0.05 * rng.standard_normal(n_samples)).astype(np.float32)


def time_offline(audio: np.ndarray, repeats: int) -> list[float]:
    """Seconds per offline 30-s image, one sample per repeat."""
    bfft_image(audio)  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        bfft_image(audio)
        samples.append(time.perf_counter() - started)
    return samples


def time_streaming(audio: np.ndarray, chunk_samples: int) -> tuple[float, float]:
    """(microseconds per column, seconds per second of audio) when fed in chunks."""
    streaming = StreamingBfft()
    started = time.perf_counter()
    for start in range(0, audio.shape[0], chunk_samples):
        streaming.push(audio[start : start + chunk_samples])
    elapsed = time.perf_counter() - started
    audio_seconds = audio.shape[0] / DEFAULT_PARAMS.sample_rate_hz
    return elapsed / streaming.n_columns_total * 1e6, elapsed / audio_seconds


def time_librosa(audio: np.ndarray, repeats: int) -> list[float] | None:
    """Seconds per librosa melspectrogram of the same audio (bench extra), if installed."""
    try:
        import librosa
    except ImportError:
        return None
    kwargs = {"y": audio, "sr": DEFAULT_PARAMS.sample_rate_hz, "n_fft": 2048,
              "hop_length": 512, "n_mels": 128}
    librosa.feature.melspectrogram(**kwargs)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        librosa.power_to_db(librosa.feature.melspectrogram(**kwargs))
        samples.append(time.perf_counter() - started)
    return samples


def run(repeats: int) -> dict:
    """All front-end figures as a dict."""
    audio = music_like(DEFAULT_PARAMS.window_samples)
    window_seconds = DEFAULT_PARAMS.window_seconds
    offline = time_offline(audio, repeats)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   "1 thread",
        "offline_seconds_median": statistics.median(offline),
        "offline_seconds_iqr": float(np.subtract(*np.percentile(offline, [75, 25]))),
        "offline_x_realtime": window_seconds / statistics.median(offline),
    }
    long_audio = music_like(DEFAULT_PARAMS.window_samples * 2, seed=1)
    for chunk in (1024, 4410):
        column_us, cost = time_streaming(long_audio, chunk)
        results[f"streaming_us_per_column_chunk{chunk}"] = column_us
        results[f"streaming_seconds_per_audio_second_chunk{chunk}"] = cost
    librosa_times = time_librosa(audio, repeats)
    if librosa_times is not None:
        results["librosa_mel_x_realtime"] = window_seconds / statistics.median(librosa_times)
    return results


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    results = run(args.repeats)
    print(json.dumps(results, indent=2))  # noqa: T201 - the benchmark's output
    from bench.common import write_result

    results.pop("machine")  # write_result records the machine
    write_result("frontend", {**results, "threads": 1})


if __name__ == "__main__":
    main()
