"""Shared benchmark helpers: machine facts, statistics, results files, artifacts, the daemon.

Every benchmark module writes ``bench/results/<name>.json`` with :func:`write_result`;
``bench/run_all.py`` turns those files into the table of ``bench/README.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from daemon.harness import DaemonProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
CACHE_DIR = REPO_ROOT / "bench" / ".cache"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
PYTHON = sys.executable
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
          "reggae", "rock"]
FMA_UNITS_ASSUMED = 2
"""FMA pipes per core assumed for the theoretical peak (Zen 4/5, Ice Lake-SP and later)."""
CPU_FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                     "amx_int8")
"""/proc/cpuinfo flags that decide inference speed (SIMD width, int8 dot products, bf16)."""

_LOGGER = logging.getLogger("bench")


def setup_logging() -> None:
    """INFO logging to stderr; TensorFlow's C++ logs quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as a dict."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    return info


def theoretical_peak() -> dict[str, Any]:
    """fp32 peak from /proc/cpuinfo: cores x clock x FMA units x SIMD lanes x 2 flops."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx" in flags else 4
    fma_units = FMA_UNITS_ASSUMED if "fma" in flags or "avx512f" in flags else 1
    mhz = float(info.get("cpu MHz", "0") or 0)
    cores = os.cpu_count() or 1
    per_cycle = fma_units * lanes * 2
    return {"simd_fp32_lanes": lanes, "fma_units_assumed": fma_units,
            "flops_per_cycle_per_core": per_cycle, "clock_mhz": mhz, "cores": cores,
            "peak_gflops": cores * mhz * 1e6 * per_cycle / 1e9,
            "how": f"{cores} cores x {mhz:.0f} MHz (/proc/cpuinfo 'cpu MHz') x {fma_units} FMA "
                   f"units x {lanes} fp32 lanes ({'avx512f' if lanes == 16 else 'avx'}) x 2"}


def machine() -> dict[str, Any]:
    """CPU model and flags of note, cores (and those usable: ``taskset``), date and load,
    recorded with every result."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    return {"cpu": info.get("model name", platform.processor() or platform.machine()),
            "cpu_family": info.get("cpu family"), "cores": os.cpu_count(),
            "cpu_flags": [flag for flag in CPU_FLAGS_OF_NOTE if flag in flags],
            "cores_usable": len(os.sched_getaffinity(0)),
            "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version()}


def cpu_label(facts: dict[str, Any]) -> str:
    """'AMD EPYC (avx512f, avx512_bf16), 1 of 2 cores' of a result's machine facts."""
    flags = facts.get("cpu_flags")
    usable, cores = facts.get("cores_usable", facts.get("cores")), facts.get("cores")
    family = f" family {facts['cpu_family']}" if facts.get("cpu_family") else ""
    return (f"{facts.get('cpu', '?')}{family}" + (f" ({', '.join(flags) or 'no AVX2'})"
                                          if flags is not None else "")
            + (f", {usable} of {cores} cores (taskset)" if usable != cores
               else f", {cores} cores"))


def summarize(samples: Sequence[float], digits: int = 6) -> dict[str, float]:
    """Median with p5/p25/p75/p95/p99 and n of ``samples``."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        return {"n": 0}
    p5, p25, p50, p75, p95, p99 = np.percentile(values, [5, 25, 50, 75, 95, 99])
    return {"n": int(values.size), "median": round(float(p50), digits),
            "p5": round(float(p5), digits), "p25": round(float(p25), digits),
            "p75": round(float(p75), digits), "p95": round(float(p95), digits),
            "p99": round(float(p99), digits), "max": round(float(values.max()), digits)}


def child_rss_mb(code: str, *args: str) -> float:
    """RSS in MB of a fresh Python process running ``code`` with ``args`` (sys.argv[1:]);
    ``code`` sets up what is measured, this appends the RSS print."""
    import subprocess

    code += "import psutil\nprint(psutil.Process().memory_info().rss / 1e6)\n"
    out = subprocess.run([PYTHON, "-c", code, *args], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return round(float(out.strip().splitlines()[-1]), 1)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/results/<name>.json with the machine facts added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    _LOGGER.info("wrote %s", path)
    return path


MODELS = ("vgg16", "default")
"""Models the daemon benchmarks run: the random-weights VGG16, or the shipped genred-default."""


def bench_model(model: str, runtime: str = "keras", quantize: str = "int8") -> Path:
    """The artifact folder of ``model`` (one of MODELS) for ``runtime``."""
    if model == "default":
        return REPO_ROOT / "models" / "genred-default"
    return ensure_tflite(quantize) if runtime == "tflite" else vgg16_artifact()


def model_hop_seconds(model: str, hop_seconds: float) -> float:
    """The configured hop after the daemon's rounding (BFFT bins, or musicnn patches)."""
    if model == "default":
        from models.musicnn.streaming import PATCH_SECONDS, hop_patches

        return hop_patches(hop_seconds) * PATCH_SECONDS
    from models.bfft import DEFAULT_PARAMS

    bin_seconds = DEFAULT_PARAMS.samples_per_bin / DEFAULT_PARAMS.sample_rate_hz
    return max(1, round(hop_seconds / bin_seconds)) * bin_seconds


def vgg16_artifact() -> Path:
    """A random-weights VGG16 artifact in bench/.cache (built once, ~60 MB, not committed)."""
    folder = CACHE_DIR / "vgg16-random"
    if (folder / "contract.json").is_file():
        return folder
    from models import vgg16
    from models.artifact import contract_for, save_artifact

    _LOGGER.info("building random-weights VGG16 artifact in %s", folder)
    model = vgg16.build_vgg16(LABELS, weights=None)
    contract = contract_for("bench-vgg16-random", vgg16.MODEL_KIND, LABELS, vgg16.IMAGE_SHAPE,
                            training={"note": "random weights, for benchmarks"})
    return save_artifact(model, folder, contract)


def music_clips() -> list[Path]:
    """Every clip of ../shared/data/gtzan-mini and cc-music, sorted."""
    clips = sorted((SHARED_DATA / "gtzan-mini").glob("*/*.flac"))
    return clips + sorted((SHARED_DATA / "cc-music").glob("*.ogg"))


@contextlib.contextmanager
def daemon_process(config: dict[str, Any], port: int, log_name: str,
                   command: Sequence[str] | None = None) -> Iterator[DaemonProcess]:
    """Run ``genred run`` with ``config`` (YAML written to bench/.cache) until /healthz answers."""
    import yaml

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    config_path = CACHE_DIR / f"{log_name}.yaml"
    config_path.write_text(yaml.safe_dump({**config, "server": {
        **config.get("server", {}), "port": port}}))
    daemon = DaemonProcess(config_path, CACHE_DIR / f"{log_name}.log", command=command)
    daemon.start()
    try:
        daemon.wait_ready_blocking(port, 120)
        yield daemon
    finally:
        daemon.stop(15)


def ensure_tflite(quantize: str) -> Path:
    """The VGG16 artifact with its TFLite export in ``quantize`` mode (exported if needed)."""
    from models.contract import read_contract
    from models.export import export_tflite

    folder = vgg16_artifact()
    note = read_contract(folder).extra.get("tflite") or {}
    if note.get("quantize") != quantize or not (folder / note.get("file", "-")).is_file():
        export_tflite(folder, quantize=quantize)
    return folder
