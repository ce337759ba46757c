"""``genred dataset build``: audio folders per genre -> BFFT slice PNGs + manifest.csv."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from models.audio import AudioDecodeError
from models.audio_stream import decode_chunks
from models.bfft import DEFAULT_PARAMS, bfft_image
from training.errors import InputError
from training.manifest import MANIFEST_FILE, SliceRow, read_manifest, write_manifest
from training.slicing import AUDIO_EXTENSIONS, source_stem
from training.stream_slicer import StreamSlicer, Window

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileJob:
    """One audio file to slice."""

    audio_path: str
    genre: str
    source: str
    out_dir: str


@dataclass
class FileResult:
    """Outcome of one file: its slice rows, or the reason it was skipped."""

    source: str
    rows: list[SliceRow] = field(default_factory=list)
    skip_reason: str | None = None
    audio_seconds: float = 0.0
    n_new_slices: int = 0


@dataclass
class BuildSummary:
    """Totals of one build run."""

    files_ok: int = 0
    files_reused: int = 0
    skipped: Counter = field(default_factory=Counter)
    slices: int = 0
    new_slices: int = 0
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    def lines(self) -> list[str]:
        """Human-readable summary lines for stdout."""
        rate = self.new_slices / self.elapsed_seconds if self.elapsed_seconds else 0.0
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        return [f"files ok:        {self.files_ok} ({self.files_reused} reused)",
                f"files skipped:   {sum(self.skipped.values())} ({skipped})",
                f"slices:          {self.slices} ({self.new_slices} new)",
                f"audio seconds:   {self.audio_seconds:.1f}",
                f"elapsed seconds: {self.elapsed_seconds:.1f}",
                f"slices/s:        {rate:.2f}"]


def find_genre_files(audio_dir: Path) -> dict[str, list[Path]]:
    """Audio files per genre folder of AUDIO_DIR (or of AUDIO_DIR/genres)."""
    if not audio_dir.is_dir():
        raise InputError(f"audio folder not found: {audio_dir}")
    folders = sorted(p for p in audio_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) == 1 and folders[0].name == "genres":
        return find_genre_files(folders[0])
    if not folders:
        raise InputError(f"{audio_dir}: no genre folders (expected AUDIO_DIR/<genre>/*.wav ...)")
    found: dict[str, list[Path]] = {}
    for folder in folders:
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            _LOGGER.warning("genre folder %s holds no audio files (%s); ignored", folder,
                            ", ".join(AUDIO_EXTENSIONS))
            continue
        found[folder.name] = _unique_stems(files)
    if not found:
        raise InputError(f"{audio_dir}: every genre folder is empty")
    return found


def _unique_stems(files: list[Path]) -> list[Path]:
    """Drop files whose stem repeats in the folder (their PNG names would collide)."""
    seen: dict[str, Path] = {}
    for path in files:
        stem = source_stem(path.name)
        if stem in seen:
            _LOGGER.warning("skipping %s: same stem as %s", path, seen[stem])
            continue
        seen[stem] = path
    return list(seen.values())


def slice_file(job: FileJob) -> FileResult:
    """Decode one file as a stream and write its slice PNGs (existing complete PNGs are
    reused); memory does not grow with the file's length."""
    slicer = StreamSlicer(DEFAULT_PARAMS.window_samples, allow_short=False)
    result = FileResult(job.source)
    try:
        for chunk in decode_chunks(job.audio_path):
            _write_slices(job, slicer.push(chunk), result)
        _write_slices(job, slicer.finish(), result)
    except AudioDecodeError as error:
        _LOGGER.warning("skipping %s", error)
        return FileResult(job.source, skip_reason="undecodable")
    result.audio_seconds = slicer.n_samples / DEFAULT_PARAMS.sample_rate_hz
    if slicer.plan is not None and slicer.plan.too_short:
        _LOGGER.warning("skipping %s: too short (%.1f s)", job.audio_path, result.audio_seconds)
        return FileResult(job.source, skip_reason="too short", audio_seconds=result.audio_seconds)
    return result


def _write_slices(job: FileJob, windows: list[Window], result: FileResult) -> None:
    """Write each window's PNG (unless present) and add its manifest row to ``result``."""
    for start, window in windows:
        png = f"{job.genre}/{source_stem(job.source)}.s{len(result.rows):02d}.png"
        target = Path(job.out_dir) / png
        if not target.is_file():
            write_png_atomic(bfft_image(window, DEFAULT_PARAMS.sample_rate_hz), target)
            result.n_new_slices += 1
        start_seconds = start / DEFAULT_PARAMS.sample_rate_hz
        result.rows.append(SliceRow(png, job.genre, job.source, len(result.rows), start_seconds))


def write_png_atomic(image: np.ndarray, target: Path) -> None:
    """Write a lossless PNG under a temporary name, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        Image.fromarray(image).save(temporary, format="PNG")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def _check_folders(audio_dir: Path, out_dir: Path) -> None:
    """OUT_DIR must not be AUDIO_DIR or inside it."""
    audio, out = audio_dir.resolve(), out_dir.resolve()
    if out == audio or audio in out.parents:
        raise InputError(f"output folder {out_dir} is inside the audio folder {audio_dir}; "
                         "choose a folder outside it")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")


def _earlier_rows(out_dir: Path) -> dict[str, list[SliceRow]]:
    """Rows of an earlier manifest grouped by source (empty when there is none)."""
    if not (out_dir / MANIFEST_FILE).is_file():
        return {}
    try:
        rows = read_manifest(out_dir)
    except InputError as error:
        _LOGGER.warning("ignoring the earlier manifest: %s", error)
        return {}
    grouped: dict[str, list[SliceRow]] = {}
    for row in rows:
        grouped.setdefault(row.source, []).append(row)
    return grouped


def plan_jobs(audio_dir: Path, out_dir: Path, limit_per_genre: int | None) -> list[FileJob]:
    """One job per audio file, at most ``limit_per_genre`` (sorted) per genre."""
    files = find_genre_files(audio_dir)
    jobs = []
    for genre, paths in files.items():
        for path in paths[:limit_per_genre]:
            source = f"{genre}/{path.name}"
            jobs.append(FileJob(str(path.resolve()), genre, source, str(out_dir.resolve())))
    _LOGGER.info("%d audio files in %d genres under %s", len(jobs), len(files), audio_dir)
    return jobs


def _run_jobs(jobs: list[FileJob], workers: int, cluster: str | None) -> list[FileResult]:
    """``slice_file`` over jobs: on the Dask cluster, a local pool of ``workers`` processes,
    or in this process for one worker; a job that raised is skipped with a warning."""
    from training.cluster import open_client, run_tasks

    results = []
    with open_client(cluster, min(workers, max(1, len(jobs)))) as client:
        for outcome in run_tasks(client, slice_file, jobs, desc="slicing"):
            if outcome.error is not None:
                _LOGGER.warning("skipping %s: %s", outcome.item.audio_path, outcome.error)
                results.append(FileResult(outcome.item.source, skip_reason="error"))
            else:
                results.append(outcome.result)
    return results


def build_dataset(audio_dir: str | Path, out_dir: str | Path, workers: int | None = None,
                  limit_per_genre: int | None = None, cluster: str | None = None) -> BuildSummary:
    """Slice every audio file of AUDIO_DIR into OUT_DIR PNGs and write OUT_DIR/manifest.csv
    (with ``cluster``, Dask workers read AUDIO_DIR and write OUT_DIR at the same paths)."""
    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    _check_folders(audio_dir, out_dir)
    if limit_per_genre is not None and limit_per_genre < 1:
        raise InputError(f"--limit-per-genre must be >= 1, got {limit_per_genre}")
    jobs = plan_jobs(audio_dir, out_dir, limit_per_genre)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder {out_dir}: {error.strerror}") from None
    started = time.monotonic()
    earlier = _earlier_rows(out_dir)
    summary = BuildSummary()
    reused = [job for job in jobs if _complete(earlier.get(job.source), out_dir)]
    todo = [job for job in jobs if job not in reused]
    results = [FileResult(job.source, rows=earlier[job.source]) for job in reused]
    summary.files_reused = len(reused)
    workers = workers or os.cpu_count() or 1
    _LOGGER.info("slicing %d files on %s (%d reused)", len(todo),
                 cluster or f"{workers} local workers", len(reused))
    results += _run_jobs(todo, workers, cluster)
    rows = _merge(earlier, results, {job.source for job in jobs}, out_dir)
    write_manifest(out_dir, rows)
    _tally(summary, results, rows, time.monotonic() - started)
    return summary


def _complete(rows: list[SliceRow] | None, out_dir: Path) -> bool:
    """True when an earlier manifest lists the file and all its PNGs exist."""
    return bool(rows) and all((out_dir / row.png).is_file() for row in rows)


def _merge(earlier: dict[str, list[SliceRow]], results: list[FileResult], sources: set[str],
           out_dir: Path) -> list[SliceRow]:
    """This run's rows plus earlier rows of files not in this run whose PNGs still exist."""
    rows = [row for result in results for row in result.rows]
    for source, old_rows in earlier.items():
        if source not in sources and _complete(old_rows, out_dir):
            rows.extend(old_rows)
    return rows


def _tally(summary: BuildSummary, results: list[FileResult], rows: list[SliceRow],
           elapsed_seconds: float) -> None:
    """Fill the summary's totals from the results."""
    for result in results:
        if result.skip_reason:
            summary.skipped[result.skip_reason] += 1
        else:
            summary.files_ok += 1
        summary.new_slices += result.n_new_slices
        summary.audio_seconds += result.audio_seconds
    summary.slices = len(rows)
    summary.elapsed_seconds = elapsed_seconds
