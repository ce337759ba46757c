"""Check genred's musicnn port against the original package; write the test fixture.

Needs a throw-away venv (never genred's) with the original package and legacy Keras::

    python3.11 -m venv /tmp/musicnn-venv
    /tmp/musicnn-venv/bin/pip install tensorflow keras tf_keras librosa scipy
    /tmp/musicnn-venv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/musicnn-venv/bin/python tools/musicnn/reference.py [--fixture tests/data/...npz]

The reference is the package's own graph (``musicnn.models.define_model``) restored from its
checkpoint with ``tf.compat.v1`` and fed librosa log-mel patches computed in float32 (the
package's extractor casts the mel spectrogram to float16 first, which turns loud bins into inf).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers need tf_keras
REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.musicnn import melspec  # noqa: E402
from models.musicnn.network import OUTPUTS, load_musicnn  # noqa: E402

_LOGGER = logging.getLogger("musicnn.reference")
DATA = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini"
FIXTURE_KEYS = ("tags", "penultimate")
CLIPS = ("jazz/jazz.00000.flac", "classical/classical.00000.flac", "metal/metal.00000.flac")


def decode_16k(path: Path, seconds: float | None = None) -> np.ndarray:
    """Decode any audio file to 16 kHz mono float32 with ffmpeg."""
    limit = ["-t", str(seconds)] if seconds else []
    raw = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path),
                          *limit, "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def librosa_log_mel(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """The package's log-mel in float32; also how many bins its float16 cast makes inf."""
    import librosa

    mel = librosa.feature.melspectrogram(y=samples, sr=melspec.SAMPLE_RATE_HZ,
                                         hop_length=melspec.HOP_LENGTH,
                                         n_fft=melspec.N_FFT, n_mels=melspec.N_MELS).T
    with np.errstate(over="ignore"):
        n_inf = int(np.isinf(10000 * mel.astype(np.float16)).sum())
    return np.log10(10000 * mel.astype(np.float32) + 1), n_inf


def package_outputs(checkpoint: str, patches: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Run the package's TF1 graph restored from its checkpoint on each batch of patches."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, melspec.PATCH_FRAMES, melspec.N_MELS])
        training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, mean_pool, max_pool, penultimate = models.define_model(
            x, training, checkpoint, 50)
        fetch = {"tags": tf.nn.sigmoid(logits), "penultimate": penultimate,
                 "max_pool": max_pool, "mean_pool": mean_pool}
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(
                sess, str(Path(musicnn.__file__).parent / checkpoint) + "/")
            return [sess.run(fetch, {x: batch, training: False}) for batch in patches]


def compare(checkpoint: str, clips: list[Path]) -> None:
    """Log front-end and network differences between the package and the port."""
    specs, patches = [], []
    for clip in clips:
        samples = decode_16k(clip)
        spec, n_inf = librosa_log_mel(samples)
        mine = melspec.log_mel(samples, pad_mode="constant")
        _LOGGER.info("%s: log-mel max abs diff %.2e (package float16 path: %d inf bins)",
                     clip.name, np.abs(mine - spec).max(), n_inf)
        specs.append(spec)
        patches.append(melspec.patches_from_log_mel(spec))
    reference = package_outputs(checkpoint, patches)
    model = load_musicnn(checkpoint)
    for clip, batch, ref in zip(clips, patches, reference, strict=True):
        out = model.predict(batch, verbose=0)
        diffs = {key: f"{np.abs(out[key] - ref[key]).max():.2e}" for key in OUTPUTS}
        _LOGGER.info("%s %s (%d patches): port vs package max abs diff %s",
                     checkpoint, clip.name, len(batch), diffs)


def write_fixture(checkpoint: str, clip: Path, seconds: float, out: Path) -> None:
    """Store the package's outputs on the first ``seconds`` of ``clip`` for tests."""
    samples = decode_16k(clip, seconds)
    spec, _ = librosa_log_mel(samples)
    batch = melspec.patches_from_log_mel(spec)
    ref = package_outputs(checkpoint, [batch])[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, clip=str(clip.relative_to(DATA.parent)), seconds=seconds,
                        checkpoint=checkpoint, band_means=batch.mean(axis=1),
                        **{key: ref[key].astype(np.float32) for key in FIXTURE_KEYS})
    _LOGGER.info("wrote %s (%d bytes, %d patches)", out, out.stat().st_size, len(batch))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="MSD_musicnn")
    parser.add_argument("--fixture", type=Path, help="write the test fixture here")
    parser.add_argument("--fixture-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    compare(args.checkpoint, [DATA / clip for clip in CLIPS])
    if args.fixture:
        write_fixture(args.checkpoint, DATA / CLIPS[0], args.fixture_seconds, args.fixture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
