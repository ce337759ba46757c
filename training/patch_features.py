"""Per-3-s-patch embeddings of labelled audio, for training and judging patch-level heads.

A collection is a folder of ``<label>/<file>`` audio (GTZAN layout). Every file is cut into
the daemon's 3-s musicnn patches (10 per 30-s clip); a file shorter than one patch (the
2-3 s gtzan-excerpts) gives one patch whose log-mel frames are repeated to 187. Each patch
is embedded by one or more musicnn networks (all four outputs kept), clean, through
random listening channels, in quiet versions and narrow-band (4 kHz) versions
(training.augment). Results are cached per collection and view.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.audio import load_audio
from models.musicnn.melspec import PATCH_FRAMES, log_mel, patches_from_log_mel
from models.musicnn.spec import PARAMS
from models.resample import resample
from training.augment import apply_channel, narrow_band_version, quiet_version, random_channel
from training.errors import InputError

_LOGGER = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".flac", ".wav", ".ogg", ".mp3", ".au", ".m4a", ".opus", ".aiff"}
INPUT_RATE_HZ = int(PARAMS["input_rate_hz"])
_CLIP_ID = re.compile(r"\.(\d+)$")
METADATA_FILE = "metadata.tsv"


@dataclass(frozen=True)
class Item:
    """One labelled audio file."""

    path: Path
    label: str
    clip_id: int | None
    """GTZAN-style clip number from ``<label>.000NN``; None when the name has none."""
    artist: str | None = None
    """From the folder's ``metadata.tsv`` (columns ``file`` and ``artist``), when it has one."""


def read_artists(audio_dir: Path) -> dict[str, str]:
    """``<label>/<file>`` -> artist from ``audio_dir/metadata.tsv`` ({} without one)."""
    table = Path(audio_dir) / METADATA_FILE
    if not table.is_file():
        return {}
    lines = table.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if "file" not in header or "artist" not in header:
        raise InputError(f"{table}: needs tab-separated 'file' and 'artist' columns")
    file_at, artist_at = header.index("file"), header.index("artist")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return {row[file_at]: row[artist_at] for row in rows if len(row) > max(file_at, artist_at)}


def scan_collection(audio_dir: Path) -> list[Item]:
    """Every audio file under ``audio_dir/<label>/``, sorted, with artists where listed."""
    artists = read_artists(audio_dir)
    items = []
    for path in sorted(Path(audio_dir).glob("*/*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        stem = path.name.removesuffix(".hq" + path.suffix).removesuffix(path.suffix)
        match = _CLIP_ID.search(stem)
        items.append(Item(path, path.parent.name, int(match.group(1)) if match else None,
                          artists.get(f"{path.parent.name}/{path.name}")))
    return items


def audio_patches(samples: np.ndarray, max_patches: int | None = None) -> np.ndarray:
    """44.1 kHz mono -> (N, 187, 96) log-mel patches; a short clip gives one tiled patch."""
    spec = log_mel(resample(samples, INPUT_RATE_HZ, int(PARAMS["sample_rate_hz"])),
                   pad_mode=PARAMS["pad_mode"])
    if spec.shape[0] < PATCH_FRAMES:
        repeats = -(-PATCH_FRAMES // spec.shape[0])
        return np.tile(spec, (repeats, 1))[np.newaxis, :PATCH_FRAMES]
    return patches_from_log_mel(spec)[:max_patches]


class Embedder:
    """The patch encoder of a musicnn-patch-head model: patches -> (N, n_features)."""

    def __init__(self, encoders: list[dict]) -> None:
        from models.patch_head import build_patch_encoder

        self.encoders = encoders
        self.model = build_patch_encoder(encoders)

    @property
    def n_features(self) -> int:
        """Width of one patch's feature vector."""
        return int(self.model.output.shape[-1])

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        """(N, n_features) float32 for (N, 187, 96) patches."""
        return np.asarray(self.model.predict_on_batch(patches), dtype=np.float32)


VIEW_KINDS = {"quiet": (1000, quiet_version), "narrow": (2000, narrow_band_version)}
"""Kinds of view besides the random channels: seed offset and the function making them."""


def view_patches(item: Item, view: int, seed: int, max_seconds: float,
                 kind: str = "channel") -> np.ndarray:
    """Patches of one item: view 0 is clean, view k > 0 a random channel, or the k-th
    version of ``kind`` ('quiet': attenuated, maybe faded in; 'narrow': 4-kHz band);
    seeded per item."""
    samples = load_audio(item.path)[: int(max_seconds * INPUT_RATE_HZ)]
    if kind in VIEW_KINDS:
        offset, make = VIEW_KINDS[kind]
        rng = np.random.default_rng([seed, offset + view, zlib.crc32(item.path.name.encode())])
        samples = make(samples, INPUT_RATE_HZ, rng)
    elif view > 0:
        rng = np.random.default_rng([seed, view, zlib.crc32(item.path.name.encode())])
        samples = apply_channel(samples, INPUT_RATE_HZ, random_channel(rng), rng)
    return audio_patches(samples)


def embed_collection(items: list[Item], embedder: Embedder, view: int, cache: Path,
                     seed: int = 0, max_seconds: float = 30.0,
                     kind: str = "channel") -> dict[str, np.ndarray]:
    """{'features', 'item'} of every patch of ``items`` in one view, cached in ``cache``."""
    if cache.is_file():
        with np.load(cache) as data:
            return {key: data[key] for key in data.files}
    per_item, item_index = [], []
    for index, item in enumerate(tqdm(items, desc=cache.stem, unit="file", leave=False)):
        patches = view_patches(item, view, seed, max_seconds, kind)
        per_item.append(embedder(patches))
        item_index.extend([index] * patches.shape[0])
    result = {"features": np.concatenate(per_item), "item": np.asarray(item_index)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result
