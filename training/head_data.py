"""Training material for `genred train-head`: labelled folders -> per-patch features."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.audio import ffmpeg_binary
from training.collection_yardstick import NON_MUSIC_COLLECTION, collection_names
from training.errors import InputError
from training.nonmusic import SYNTHETIC_KINDS, synthetic_nonmusic
from training.patch_features import (
    AUDIO_SUFFIXES,
    INPUT_RATE_HZ,
    Embedder,
    Item,
    embed_collection,
    scan_collection,
)
from training.patch_head import PatchData

_LOGGER = logging.getLogger(__name__)
NO_MUSIC_LABEL = "no_music"
SYNTHETIC_SECONDS = 12.0
SYNTHETIC_PER_KIND = 2


@dataclass(frozen=True)
class Collections:
    """The labelled folders of one training run."""

    folders: list[tuple[Path, list[Item]]]
    genres: list[str]

    @property
    def has_no_music(self) -> bool:
        """Whether any folder holds non-music."""
        return any(item.label == NO_MUSIC_LABEL for _, items in self.folders for item in items)

    def describe(self) -> dict:
        """Training-data summary for the contract."""
        return {"folders": [{"path": str(path), "files": len(items)}
                            for path, items in self.folders],
                "genres": self.genres}


def _nonmusic_items(paths: list[str]) -> list[Item]:
    """Every audio file named or under a named folder, as a no-music item."""
    files = []
    for path in map(Path, paths):
        found = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not found:
            raise InputError(f"--nonmusic {path}: no audio files")
        files.extend(found)
    return [Item(path, NO_MUSIC_LABEL, None) for path in files]


def write_synthetic_nonmusic(folder: Path, seed: int) -> list[Item]:
    """Synthetic silence/noise/hum as FLAC files in ``folder`` (written once)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for kind in SYNTHETIC_KINDS:
        for index in range(SYNTHETIC_PER_KIND):
            samples = synthetic_nonmusic(kind, int(SYNTHETIC_SECONDS * INPUT_RATE_HZ),
                                         INPUT_RATE_HZ, rng)
            path = folder / f"synthetic-{kind}-{index}.flac"
            if not path.is_file():
                subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-f", "f32le", "-ar",
                                str(INPUT_RATE_HZ), "-ac", "1", "-i", "pipe:0", str(path)],
                               input=samples.tobytes(), check=True, timeout=60)
            items.append(Item(path, NO_MUSIC_LABEL, None))
    return items


def collect_items(music_dirs: list[str], nonmusic: list[str], work_dir: Path,
                  synthetic: bool, seed: int) -> Collections:
    """Scan the music folders (and non-music, real and synthetic)."""
    folders = []
    for folder in map(Path, music_dirs):
        items = scan_collection(folder) if folder.is_dir() else []
        if not items:
            raise InputError(f"{folder}: no audio files in <genre>/ subfolders")
        folders.append((folder, items))
    genres = sorted({item.label for _, items in folders for item in items})
    if NO_MUSIC_LABEL in genres or len(genres) < 2:
        raise InputError(f"need 2 or more genre folders (and none named {NO_MUSIC_LABEL!r}), "
                         f"found {genres}")
    if nonmusic:
        folders.append((Path("nonmusic"), _nonmusic_items(nonmusic)))
    if synthetic:
        synthetic_dir = work_dir / "synthetic-nonmusic"
        folders.append((synthetic_dir, write_synthetic_nonmusic(synthetic_dir, seed)))
    return Collections(folders, genres)


def item_collections(collections: Collections) -> list[str]:
    """Collection of every item, folder by folder (non-music folders: one apart)."""
    music = [(folder, items) for folder, items in collections.folders
             if not all(item.label == NO_MUSIC_LABEL for item in items)]
    names = collection_names([folder.name for folder, _ in music],
                              [all(item.clip_id is not None for item in items)
                               for _, items in music])
    of_folder = dict(zip([id(items) for _, items in music], names, strict=True))
    return [of_folder.get(id(items), NON_MUSIC_COLLECTION)
            for _, items in collections.folders for _ in items]


def embed_items(collections: Collections, outputs: list[str], encoders: list[dict],
                views: int, cache_dir: Path, seed: int, max_seconds: float,
                quiet_views: int = 0, narrow_views: int = 0):
    """(PatchData over every folder and view, the patch encoder keras.Model); views
    1..``views`` are listening channels, then ``quiet_views`` quiet versions, then
    ``narrow_views`` narrow-band versions."""
    embedder = Embedder(encoders)
    features, owners, view_of, offset = [], [], [], 0
    items = [item for _, folder_items in collections.folders for item in folder_items]
    kinds = [(v, f"view{v}", "channel", v) for v in range(views + 1)]
    kinds += [(views + q, f"quiet{q}", "quiet", q) for q in range(1, quiet_views + 1)]
    kinds += [(views + quiet_views + q, f"narrow{q}", "narrow", q)
              for q in range(1, narrow_views + 1)]
    for number, (folder, folder_items) in enumerate(collections.folders):
        for view, name, kind, index in kinds:
            cache = cache_dir / f"{number}-{folder.name}-{name}.npz"
            result = embed_collection(folder_items, embedder, index, cache, seed, max_seconds,
                                      kind)
            features.append(result["features"])
            owners.append(result["item"] + offset)
            view_of.append(np.full(result["item"].size, view))
        offset += len(folder_items)
    data = PatchData(
        features=np.concatenate(features), item=np.concatenate(owners),
        view=np.concatenate(view_of),
        target=np.array([outputs.index(item.label) for item in items]),
        clip_ids=[item.clip_id for item in items], labels=[item.label for item in items],
        artists=[item.artist for item in items], collections=item_collections(collections))
    _LOGGER.info("%d files, %d patches per view, %d features per patch", len(items),
                 int(np.sum(data.view == 0)), data.features.shape[1])
    return data, embedder.model


def cache_key(encoders: list[dict], seed: int, max_seconds: float) -> str:
    """The feature cache's folder name: what the features depend on, the front-end included
    (version 1 caches, made before quiet patches were lifted, are never reused)."""
    from models.musicnn.spec import FRONTEND_VERSION

    parts: list = [encoders, seed, max_seconds]
    if FRONTEND_VERSION > 1:
        parts.append(FRONTEND_VERSION)
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
