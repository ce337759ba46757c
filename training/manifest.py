"""manifest.csv of a dataset folder: one row per slice PNG (png, genre, source, slice, start)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from training.errors import InputError
from training.slicing import source_stem

MANIFEST_FILE = "manifest.csv"
FIELDS = ("png", "genre", "source", "slice_index", "start_seconds")


@dataclass(frozen=True)
class SliceRow:
    """One slice image of the dataset."""

    png: str
    """PNG path relative to the dataset folder (genre/stem.sNN.png)."""
    genre: str
    """Genre label (the audio file's folder name)."""
    source: str
    """Audio file path relative to the audio folder (genre/file.ext)."""
    slice_index: int
    """Slice number within the source file."""
    start_seconds: float
    """Start of the slice in the source audio, in seconds."""

    @property
    def stem(self) -> str:
        """Source file stem ('blues.00000'), used by split lists."""
        return source_stem(self.source)

    def to_csv(self) -> dict[str, str]:
        """CSV row dict."""
        return {"png": self.png, "genre": self.genre, "source": self.source,
                "slice_index": str(self.slice_index),
                "start_seconds": f"{self.start_seconds:.3f}"}


def read_manifest(data_dir: str | Path) -> list[SliceRow]:
    """Rows of DATA_DIR/manifest.csv; a missing or malformed manifest raises InputError."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise InputError(f"{data_dir}: no {MANIFEST_FILE} (build it with 'genred dataset build')")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
                raise InputError(f"{path}: header must have columns {', '.join(FIELDS)}")
            return [_parse_row(record) for record in reader]
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: malformed row ({error})") from error


def _parse_row(record: dict[str, str]) -> SliceRow:
    """A CSV record as a SliceRow."""
    return SliceRow(png=record["png"], genre=record["genre"], source=record["source"],
                    slice_index=int(record["slice_index"]),
                    start_seconds=float(record["start_seconds"]))


def write_manifest(data_dir: str | Path, rows: list[SliceRow]) -> Path:
    """Write DATA_DIR/manifest.csv atomically (temporary file, then rename)."""
    path = Path(data_dir) / MANIFEST_FILE
    temporary = path.with_name(f".{MANIFEST_FILE}.partial")
    ordered = sorted(rows, key=lambda row: (row.genre, row.source, row.slice_index))
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(row.to_csv() for row in ordered)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    return path


def genres_of(rows: list[SliceRow]) -> list[str]:
    """Sorted genre names present in ``rows`` (the model's label order)."""
    return sorted({row.genre for row in rows})
