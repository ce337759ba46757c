"""``runtime: auto``: the fastest runtime for this machine and model, chosen by measurement.

Candidates are the runtimes this install can run: LiteRT and OpenVINO (both run the
artifact's TFLite export), Keras float32, and bfloat16 (Keras, OpenVINO) where the CPU
computes bfloat16 natively (avx512_bf16 or AMX). With one candidate there is nothing to
measure. Otherwise models/runtime_probe.py times each on the demo clips in a process of its
own, once per machine and model; a candidate counts only when its top-1 agrees with the first
(Keras float32 where installed, else LiteRT float32) on at least
:data:`MIN_AGREEMENT` of the units. The choice is cached in the state directory
(``runtime-choice.json``), keyed by the model files, the CPU, the cores and the runtime
versions. An explicit ``runtime:`` or ``precision:`` skips all of this, and so does
``GENRED_RUNTIME_PROBE=0`` in the environment (the default rule: LiteRT when the artifact has
an export; the test suite sets it, its runtime-choice tests clear it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.contract import check_contract, read_contract
from models.extras import keras_installed
from models.loader import NVIDIA_DRIVER, resolve_runtime
from models.openvino_runtime import openvino_available
from models.runtime_probe import Candidate, Measurement
from models.statedir import state_dir
from models.tflite_runtime import litert_available

_LOGGER = logging.getLogger(__name__)

MIN_AGREEMENT = 0.995
"""Least top-1 agreement with Keras float32 a faster candidate needs."""
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags under which bfloat16 is computed natively (else it is emulated, slower)."""
CACHE_FILE = "runtime-choice.json"
MODEL_SUFFIXES = (".json", ".keras", ".tflite", ".h5", ".npz")
"""The artifact files a measurement depends on (editing the model card or a plot does not)."""
PROBE_TIMEOUT_SECONDS = 600.0
PROBE_SWITCH = "GENRED_RUNTIME_PROBE"
"""Environment variable; "0" skips the measuring."""
REPO_ROOT = Path(__file__).resolve().parent.parent
PROBE_CLIPS_DIR = REPO_ROOT / "daemon" / "demo"
"""Real music to measure on: the demo playlist's clips."""


KERAS_MARGIN = 1.15
"""Keras (TensorFlow in memory: 0.5-1 GB more RSS than LiteRT or OpenVINO) is chosen over
them only when it is at least this much faster."""
CRITERIA = {"cpu": "cpu_ms_per_unit", "wall": "ms_per_unit"}
"""What "fastest" means: least CPU time per unit (the daemon: sources per machine), or least
wall time (genred classify: one file as fast as the cores allow)."""


@dataclass
class RuntimeChoice:
    """The runtime, precision and threads (None: as configured) to load, and why."""

    runtime: str
    precision: str
    reason: str
    threads: int | None = None
    measured: list[Measurement] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        """The /healthz ``inference`` section."""
        return {"runtime": self.runtime, "precision": self.precision, "threads": self.threads,
                "chosen_by": self.reason, "measured": [asdict(item) for item in self.measured]}


def cpu_flags() -> set[str]:
    """The CPU's flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('' where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    line = next((row for row in text.splitlines() if row.startswith("model name")), "")
    return line.partition(":")[2].strip()


def candidates(folder: Path, num_threads: int | None = None) -> list[Candidate]:
    """The runtimes this install can run the artifact with; Keras float32 (the reference)
    first when installed; the export runtimes on every core and on one (less CPU per unit:
    no thread hand-offs) unless ``num_threads`` is configured."""
    exported = isinstance(read_contract(folder).extra.get("tflite"), dict)
    bf16 = bool(cpu_flags() & set(BF16_FLAGS))
    one_core = num_threads is None and len(os.sched_getaffinity(0)) > 1
    found = []
    if keras_installed():
        found.append(Candidate("keras", "float32"))
        if bf16:
            found.append(Candidate("keras", "bfloat16"))
    if exported and litert_available():
        found.append(Candidate("tflite", "float32"))
        if one_core:
            found.append(Candidate("tflite", "float32", 1))
    if exported and openvino_available():
        precision = "bfloat16" if bf16 else "float32"
        found += [Candidate("openvino", "float32")] if bf16 else []
        found.append(Candidate("openvino", precision))
        if one_core:
            found.append(Candidate("openvino", precision, 1))
    return found


def _version(package: str) -> str:
    """An installed package's version ('' when absent)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def cache_key(folder: Path, found: Sequence[Candidate], num_threads: int | None) -> str:
    """What a measurement depends on: model files, CPU, cores, threads, runtime versions."""
    files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime))
                   for p in folder.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", *BF16_FLAGS})
    facts = {"model": str(folder.resolve()), "files": files, "cpu": cpu_model(),
             "flags": flags, "cores": len(os.sched_getaffinity(0)), "threads": num_threads,
             "candidates": [c.name for c in found],
             "versions": [_version(p) for p in ("tensorflow", "keras", "ai-edge-litert",
                                                 "openvino")]}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def pick(measured: Sequence[Measurement], criterion: str = "cpu") -> tuple[Measurement, str]:
    """The fastest candidate by ``criterion`` (CRITERIA) that agrees with the reference (the
    first), and why."""
    agreeing = [m for m in measured if m.top1_agreement >= MIN_AGREEMENT]
    cost = {id(m): getattr(m, CRITERIA[criterion]) for m in agreeing}
    for m in agreeing:  # TensorFlow's memory must buy speed
        cost[id(m)] *= KERAS_MARGIN if m.runtime == "keras" else 1.0
    best = min(agreeing, key=lambda m: cost[id(m)])
    figures = ", ".join(
        f"{m.candidate.name} {m.cpu_ms_per_unit:.2f} CPU ms /"
        f" {m.ms_per_unit:.2f} ms (agreement {m.top1_agreement:.3f})" for m in measured)
    return best, (f"least {criterion} time per unit of work on this machine (Keras only when "
                  f"{KERAS_MARGIN}x faster than LiteRT/OpenVINO): {figures}")


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache file's entries ({} when missing or unreadable)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _run_probe(folder: Path, found: Sequence[Candidate], clips: Sequence[Path],
               num_threads: int | None) -> list[Measurement]:
    """models.runtime_probe in a child process; its measurements."""
    command = [sys.executable, "-m", "models.runtime_probe", str(folder)]
    command += [arg for c in found for arg in ("--candidate", c.to_arg())]
    command += [arg for clip in clips for arg in ("--clip", str(clip))]
    if num_threads is not None:
        command += ["--num-threads", str(num_threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                            timeout=PROBE_TIMEOUT_SECONDS)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise RuntimeError(f"runtime probe failed: {tail[0]}")
    items = json.loads(result.stdout.strip().splitlines()[-1])
    return [Measurement.from_dict(item) for item in items]


def fallback(found: Sequence[Candidate], reason: str) -> RuntimeChoice:
    """Without a measurement: LiteRT when it is a candidate (least memory, the longest
    served), else OpenVINO float32, else Keras."""
    names = {c.runtime for c in found}
    runtime = next((name for name in ("tflite", "openvino") if name in names), "keras")
    return RuntimeChoice(runtime, "float32", reason)


def choose_runtime(folder: str | Path, runtime: str, precision: str,
                   num_threads: int | None = None, clips: Sequence[Path] | None = None,
                   criterion: str = "cpu",
                   on_measure: Callable[[str], None] | None = None) -> RuntimeChoice:
    """The runtime and precision to load ``folder`` with (see the module docstring); the
    measuring plays ``clips`` (default: the demo playlist) and is announced through
    ``on_measure`` too (a CLI that logs only warnings: the user sees why it waits)."""
    folder = Path(folder)
    contract = read_contract(folder)
    check_contract(contract)
    if runtime != "auto" or precision != "auto":
        precision = "float32" if precision == "auto" else precision
        return RuntimeChoice(resolve_runtime(contract, runtime, precision), precision,
                             "configured" if runtime != "auto" else
                             "runtime auto with a configured precision: the default rule")
    if NVIDIA_DRIVER.exists() and keras_installed():
        return RuntimeChoice("keras", "float32", "NVIDIA GPU present (Keras runs on it)")
    found = candidates(folder, num_threads)
    if len({(c.runtime, c.precision) for c in found}) <= 1:
        return fallback(found, "the only runtime installed")
    if os.environ.get(PROBE_SWITCH) == "0":
        return fallback(found, f"default rule ({PROBE_SWITCH}=0: not measured)")
    path = state_dir() / CACHE_FILE
    key = cache_key(folder, found, num_threads)
    entries = _read_cache(path)
    measured = _cached(entries, key)
    where = f"cached in {path}"
    if measured is None:
        note = (f"runtime auto: measuring {', '.join(c.name for c in found)} on this "
                f"machine (once, 10-30 s; cached in {path})")
        _LOGGER.info("%s", note)
        if on_measure is not None:
            on_measure(note)
        try:
            measured = _run_probe(folder, found,
                                  sorted(PROBE_CLIPS_DIR.glob("*.ogg")) if clips is None
                                  else clips, num_threads)
        except (OSError, RuntimeError, ValueError, TypeError,
                subprocess.TimeoutExpired) as error:
            _LOGGER.warning("runtime auto: %s; using the default rule", error)
            return fallback(found, f"default rule (measuring failed: {error})")
        where = _store(path, entries, key, measured)
    best, reason = pick(measured, criterion)
    return RuntimeChoice(best.runtime, best.precision, f"{reason} ({where})", best.threads,
                         measured)


def _cached(entries: dict[str, Any], key: str) -> list[Measurement] | None:
    """The measurements cached under ``key`` (None when absent or of another format)."""
    try:
        return [Measurement.from_dict(item) for item in entries[key]["measured"]]
    except (KeyError, TypeError):
        return None


def _store(path: Path, entries: dict[str, Any], key: str,
           measured: Sequence[Measurement]) -> str:
    """Cache ``measured`` under ``key``; where it went, for the log."""
    entries[key] = {"measured": [asdict(m) for m in measured]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries, indent=1))
    except OSError as error:
        _LOGGER.warning("runtime auto: cannot cache the choice in %s: %s", path, error)
        return "not cached"
    return f"measured now, cached in {path}"
