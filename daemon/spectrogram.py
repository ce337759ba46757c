"""GET /sources/<name>/spectrogram.png: the picture the model sees, rendered only on request.

BFFT (VGG16-style) models: the 224x224 BFFT image, the model's input itself (time on x, low
frequencies at the bottom). musicnn models: the newest 10 log-mel patches (187 frames x 96 mel
bands each) side by side, low bands at the bottom, in a fixed colour map over a fixed range
(:data:`MEL_RANGE` of log10(10000 mel + 1): 0 is silence, a full-scale tone reaches ~6).

The service reports each due window (:meth:`Spectrograms.on_window`, one per hop); a request
copies the source's newest input on the event loop, colours and PNG-encodes it in a worker
thread, and the PNG is kept until the source's next hop, so the clients of one hop share one
render.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np
from PIL import Image
from websockets.http11 import Response

from daemon.http_responses import http_response
from daemon.windower import Window, Windower
from models.bfft import columns_to_image
from models.features import BfftExtractor

_LOGGER = logging.getLogger(__name__)

MEL_RANGE = (0.0, 5.0)
"""log10(10000 mel + 1) mapped to the first and the last colour (clipped beyond)."""
_PATH = re.compile(r"/sources/([^/]+)/spectrogram\.png")
_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                     (245, 125, 21), (250, 193, 39), (252, 255, 164)], np.float64)
"""A fixed dark-to-bright map (inferno-like): quiet is dark, loud is pale yellow."""


def colour_table(n_levels: int = 256) -> np.ndarray:
    """(n_levels, 3) uint8 colours interpolated between the anchors."""
    positions = np.linspace(0.0, 1.0, _ANCHORS.shape[0])
    levels = np.linspace(0.0, 1.0, n_levels)
    return np.stack([np.interp(levels, positions, _ANCHORS[:, channel]) for channel in range(3)],
                    axis=1).round().astype(np.uint8)


_COLOURS = colour_table()


def mel_picture(patches: np.ndarray) -> np.ndarray:
    """(n, frames, bands) log-mel patches -> (bands, n * frames, 3) uint8, low bands at bottom."""
    low, high = MEL_RANGE
    scaled = (np.asarray(patches, np.float32) - low) * (255.0 / (high - low))
    levels = np.clip(scaled, 0, 255).astype(np.uint8)
    time_major = levels.reshape(-1, levels.shape[-1])  # patches side by side, oldest left
    return _COLOURS[time_major.T[::-1]]


def png_bytes(picture: np.ndarray) -> bytes:
    """A (height, width, 3) uint8 picture as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def picture_maker(extractor: Any, features: Any) -> Callable[[], np.ndarray] | None:
    """A copy of the source's newest model input that a worker thread can colour, or None.

    BFFT: the extractor's current columns; musicnn patch models: the front-end's newest
    patches; musicnn whole-window models: the newest window's patches (None when silent).
    """
    if isinstance(extractor, BfftExtractor):
        columns, params = extractor.columns_db(), extractor.params
        return lambda: columns_to_image(columns, params)
    recent = getattr(getattr(extractor, "frontend", None), "recent_patches", None)
    if recent:  # float16 arrays never written again: the list is a snapshot
        patches = list(recent)
        return lambda: mel_picture(np.stack(patches))
    if isinstance(features, np.ndarray) and features.ndim == 3 and features.dtype != np.uint8:
        return lambda: mel_picture(features)
    return None


def source_of_path(path: str) -> str | None:
    """The source name of a /sources/<name>/spectrogram.png path, else None."""
    match = _PATH.fullmatch(path)
    return None if match is None else unquote(match.group(1))


class SpectrogramUnavailable(Exception):
    """No picture yet (warming up) or none for the newest window (silent): HTTP 503."""


@dataclass
class _Picture:
    """One source's hop count, newest window input and the render of its newest hop."""

    hops: int = 0
    features: Any = None
    render_hop: int = -1
    render: asyncio.Future[bytes] | None = None


class Spectrograms:
    """Per-source PNGs of the model's input, rendered on request and cached per hop."""

    def __init__(self, windowers: Mapping[str, Windower]) -> None:
        self._windowers = dict(windowers)
        self._pictures = {name: _Picture() for name in self._windowers}
        self.renders = 0
        """PNGs rendered so far (one per source and hop at most)."""

    def on_window(self, name: str, window: Window) -> None:
        """A window of ``name`` was due (its features: None when silent)."""
        picture = self._pictures[name]
        picture.hops += 1
        picture.features = window.features

    async def png(self, name: str) -> bytes:
        """The PNG of the source's newest hop (KeyError: unknown; SpectrogramUnavailable)."""
        picture, windower = self._pictures[name], self._windowers[name]
        if picture.hops == 0:
            raise SpectrogramUnavailable(
                f"source {name!r} is warming up ({100 * windower.warm_fraction:.0f}% of its "
                f"first window)")
        if picture.render is None or picture.render_hop != picture.hops:
            make = picture_maker(windower.extractor, picture.features)
            if make is None:
                raise SpectrogramUnavailable(f"source {name!r} is silent: no model input")
            picture.render = asyncio.ensure_future(asyncio.to_thread(self._render, make))
            picture.render_hop = picture.hops
        render = picture.render
        try:
            return await asyncio.shield(render)
        except Exception:
            if picture.render is render:
                picture.render = None  # the next request tries again
            raise

    def _render(self, make: Callable[[], np.ndarray]) -> bytes:
        """Colour and encode (worker thread)."""
        self.renders += 1
        return png_bytes(make())

    async def response(self, name: str) -> Response:
        """The HTTP answer: 200 PNG, 404 unknown source, 503 not yet (JSON reasons)."""
        if name not in self._pictures:
            return _json(404, f"unknown source {name!r}; known: {sorted(self._pictures)}")
        try:
            body = await self.png(name)
        except SpectrogramUnavailable as reason:
            return _json(503, str(reason), [("Retry-After", "2")])
        except Exception as error:
            _LOGGER.exception("spectrogram of source %s failed", name)
            return _json(500, f"{type(error).__name__}: {error}")
        return http_response(200, body, "image/png")


def _json(status: int, reason: str, extra: list[tuple[str, str]] | None = None) -> Response:
    """A JSON error answer."""
    return http_response(status, json.dumps({"error": reason}), "application/json", extra or [])
