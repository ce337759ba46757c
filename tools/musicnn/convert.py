"""Convert the TF1 checkpoints shipped in the musicnn 0.1.0 wheel to genred's Keras port.

Usage (the wheel is fetched with ``pip download musicnn==0.1.0 --no-deps`` when not given)::

    python tools/musicnn/convert.py [--wheel musicnn-0.1.0-py3-none-any.whl]
        [--checkpoint MSD_musicnn --checkpoint MTT_musicnn] [--out models/musicnn]
        [--dtype float16] [--check]

Writes ``<out>/<checkpoint>.npz`` (arrays named ``<keras layer>/<weight>``, see
``models/musicnn/network.py``; kernels in ``--dtype``, biases and BatchNorm statistics in
float32, because float16 moving variances alone move the tag probabilities by ~3e-3) and
``<out>/LICENSE-musicnn.txt`` (the package's ISC notice).
Only TensorFlow's checkpoint reader is used; the musicnn package is never imported.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

_LOGGER = logging.getLogger("musicnn.convert")
REPO_ROOT = Path(__file__).resolve().parents[2]
WHEEL_SPEC = "musicnn==0.1.0"
LICENSE_MEMBER = "musicnn-0.1.0.dist-info/LICENSE.md"
CKPT_FILES = (".index", ".data-00000-of-00001")

# keras layer name -> TF1 variable scope in the checkpoint (creation order of build_musicnn)
LAYER_MAP = {
    "input_bn": "batch_normalization",
    "timbral_74_conv": "conv2d", "timbral_74_bn": "batch_normalization_1",
    "timbral_77_conv": "conv2d_1", "timbral_77_bn": "batch_normalization_2",
    "temporal_128_conv": "conv2d_2", "temporal_128_bn": "batch_normalization_3",
    "temporal_64_conv": "conv2d_3", "temporal_64_bn": "batch_normalization_4",
    "temporal_32_conv": "conv2d_4", "temporal_32_bn": "batch_normalization_5",
    "midend1_conv": "conv2d_5", "midend1_bn": "batch_normalization_6",
    "midend2_conv": "conv2d_6", "midend2_bn": "batch_normalization_7",
    "midend3_conv": "conv2d_7", "midend3_bn": "batch_normalization_8",
    "pool_bn": "batch_normalization_9",
    "penultimate_dense": "dense", "penultimate": "batch_normalization_10",
    "logits": "dense_1",
}
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
DENSE_WEIGHTS = ("kernel", "bias")


def download_wheel(dest: Path) -> Path:
    """Fetch the musicnn wheel with pip into ``dest``."""
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps",
                    "--only-binary", ":all:", "-d", str(dest)], check=True)
    return next(dest.glob("musicnn-*.whl"))


def extract_checkpoint(wheel: Path, checkpoint: str, dest: Path) -> str:
    """Copy a checkpoint's files out of the wheel; return the TF checkpoint prefix."""
    prefix = dest / checkpoint / "model"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for suffix in CKPT_FILES:
            with archive.open(f"musicnn/{checkpoint}/{suffix}") as src, \
                    open(f"{prefix}{suffix}", "wb") as dst:
                shutil.copyfileobj(src, dst)
    return str(prefix)


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """All variables of a TF checkpoint as numpy arrays (optimizer slots skipped)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    names = [name for name, _ in tf.train.list_variables(prefix)]
    return {name: reader.get_tensor(name) for name in names
            if "Adam" not in name and not name.startswith("beta")}


def to_keras_arrays(variables: dict[str, np.ndarray],
                    layer_map: dict[str, str] = LAYER_MAP) -> dict[str, np.ndarray]:
    """Rename TF1 variables to ``<keras layer>/<weight>`` and reshape the mid-end kernels."""
    arrays: dict[str, np.ndarray] = {}
    for layer, scope in layer_map.items():
        names = BN_WEIGHTS if scope.startswith("batch_norm") else DENSE_WEIGHTS
        for weight in names:
            value = variables.pop(f"{scope}/{weight}")
            if layer.startswith("midend") and weight == "kernel":
                value = value[:, :, 0, :]  # (7, C_in, 1, 64) -> Conv1D (7, C_in, 64)
            arrays[f"{layer}/{weight}"] = value
    if variables:
        raise ValueError(f"unmapped checkpoint variables: {sorted(variables)}")
    return arrays


def check_storage(arrays: dict[str, np.ndarray], path: Path, vgg: bool = False) -> float:
    """Max abs output difference (tags and embeddings) between float32 and stored weights."""
    sys.path.insert(0, str(REPO_ROOT))
    from models.musicnn.network import OUTPUTS, build_musicnn, load_weights_npz
    from models.musicnn.vgg import VGG_OUTPUTS, build_vgg

    if vgg:
        build_musicnn, OUTPUTS = build_vgg, VGG_OUTPUTS  # noqa: N806 - same check, VGG graph
    reference = build_musicnn()
    with tempfile.TemporaryDirectory() as tmp:
        exact = Path(tmp) / "exact.npz"
        np.savez(exact, **arrays)
        load_weights_npz(reference, exact)
    stored = build_musicnn()
    load_weights_npz(stored, path)
    rng = np.random.default_rng(0)
    patches = rng.gamma(1.0, 1.0, size=(4, 187, 96)).astype(np.float32)
    out_a, out_b = reference.predict(patches, verbose=0), stored.predict(patches, verbose=0)
    diffs = {key: float(np.abs(out_a[key] - out_b[key]).max()) for key in OUTPUTS}
    _LOGGER.info("float32 vs stored weights, max abs diff on random patches: %s", diffs)
    return max(diffs.values())


def convert(wheel: Path, checkpoint: str, out_dir: Path, dtype: str, check: bool) -> Path:
    """Convert one checkpoint of the wheel to ``<out_dir>/<checkpoint>.npz``."""
    with tempfile.TemporaryDirectory() as tmp:
        variables = read_checkpoint(extract_checkpoint(wheel, checkpoint, Path(tmp)))
    vgg = checkpoint.endswith("_vgg")
    if vgg:
        sys.path.insert(0, str(REPO_ROOT))
        from models.musicnn.vgg import VGG_LAYER_MAP
    arrays = to_keras_arrays(variables, VGG_LAYER_MAP if vgg else LAYER_MAP)
    n_params = sum(a.size for a in arrays.values())
    path = out_dir / f"{checkpoint}.npz"
    np.savez_compressed(path, **{k: v.astype(dtype if k.endswith("/kernel") else np.float32)
                                 for k, v in arrays.items()})
    _LOGGER.info("%s: %d parameters -> %s (%d bytes, kernels %s)", checkpoint, n_params, path,
                 path.stat().st_size, dtype)
    if check:
        check_storage(arrays, path, vgg)
    return path


def write_license(wheel: Path, out_dir: Path) -> Path:
    """Copy the package's ISC licence notice next to the converted weights."""
    path = out_dir / "LICENSE-musicnn.txt"
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(LICENSE_MEMBER).decode("utf-8")
    path.write_text("musicnn 0.1.0 (https://pypi.org/project/musicnn/), ISC licence:\n\n"
                    + text.strip() + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="musicnn-0.1.0 wheel (downloaded if absent)")
    parser.add_argument("--checkpoint", action="append",
                        choices=("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"))
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "musicnn")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"),
                        help="storage of conv/dense kernels (biases and BatchNorm stay float32)")
    parser.add_argument("--check", action="store_true", help="compare stored vs float32 outputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        args.out.mkdir(parents=True, exist_ok=True)
        for checkpoint in args.checkpoint or ["MSD_musicnn"]:
            convert(wheel, checkpoint, args.out, args.dtype, args.check)
        write_license(wheel, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
