"""PNG figures with matplotlib (skipped with a log line when it is not installed)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

_LOGGER = logging.getLogger(__name__)

CHORD_GAP_RADIANS = 0.06


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None (logged) when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        _LOGGER.info("matplotlib is not installed; figures are skipped")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    """Save a figure atomically (temporary name, then rename) and close it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    temporary.replace(path)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def history_png(history: dict[str, list[float]], path: Path) -> Path | None:
    """Loss and accuracy per epoch (training and validation), two panels."""
    plt = _pyplot()
    if plt is None or not history:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], style, marker="o", label=key)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    return _save(figure, path)


def confusion_png(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> Path | None:
    """Confusion matrix as counts and row-normalised (recall) panels."""
    plt = _pyplot()
    if plt is None:
        return None
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = max(5.0, 0.55 * len(labels) + 2.0)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    panels = ((matrix, "counts", "d"), (normalised, "row-normalised", ".2f"))
    for axis, (values, name, fmt) in zip(axes, panels, strict=True):
        image = axis.imshow(values, cmap="Blues")
        figure.colorbar(image, ax=axis, fraction=0.046)
        ticks = np.arange(len(labels))
        axis.set_xticks(ticks, labels, rotation=45, ha="right")
        axis.set_yticks(ticks, labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{title}: {name}")
        limit = values.max() / 2 if values.size else 0
        for (i, j), value in np.ndenumerate(values):
            axis.text(j, i, format(value, fmt), ha="center", va="center", fontsize=7,
                      color="white" if value > limit else "black")
    return _save(figure, path)


def _arc_points(angle_from: float, angle_to: float, n: int = 24) -> np.ndarray:
    """Points on the unit circle from one angle to another."""
    angles = np.linspace(angle_from, angle_to, n)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _ribbon_path(span_a: tuple[float, float], span_b: tuple[float, float]):
    """Closed Bezier path: arc at A, quadratic curve through the centre to arc B, and back."""
    from matplotlib.path import Path as MplPath

    arc_a, arc_b = _arc_points(*span_a), _arc_points(*span_b)
    vertices = [arc_a[0], *arc_a[1:], (0.0, 0.0), arc_b[0], *arc_b[1:], (0.0, 0.0), arc_a[0]]
    codes = ([MplPath.MOVETO] + [MplPath.LINETO] * (len(arc_a) - 1) + [MplPath.CURVE3] * 2
             + [MplPath.LINETO] * (len(arc_b) - 1) + [MplPath.CURVE3] * 2)
    return MplPath(np.array(vertices), codes)


def _chord_spans(matrix: np.ndarray) -> tuple[list[tuple[float, float]], dict]:
    """Each genre's arc, and each confusion's (i, j, end) sub-span on it; width ~ count."""
    n = matrix.shape[0]
    off = matrix * (1 - np.eye(n, dtype=matrix.dtype))
    involvement = off.sum(axis=0) + off.sum(axis=1)
    arc = 2 * np.pi / n - CHORD_GAP_RADIANS
    per_count = arc / max(int(involvement.max()), 1)
    arcs = [(i * 2 * np.pi / n, i * 2 * np.pi / n + arc) for i in range(n)]
    spans, cursor = {}, [start for start, _ in arcs]
    for i in range(n):
        for j in range(n):
            for end, genre in (("from", i), ("to", j)):
                if off[i, j] == 0:
                    continue
                width = off[i, j] * per_count
                spans[(i, j, end)] = (cursor[genre], cursor[genre] + width)
                cursor[genre] += width
    return arcs, spans


def chord_png(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> Path | None:
    """Chord diagram of the confusions: genres around a circle, chord width = count."""
    plt = _pyplot()
    if plt is None:
        return None
    from matplotlib.patches import PathPatch

    arcs, spans = _chord_spans(np.asarray(matrix, dtype=int))
    colours = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    figure, axis = plt.subplots(figsize=(7, 7))
    for i, (start, stop) in enumerate(arcs):
        points = _arc_points(start, stop) * 1.04
        axis.plot(points[:, 0], points[:, 1], linewidth=8, color=colours(i), solid_capstyle="butt")
        middle = (start + stop) / 2
        rotation = (np.degrees(middle) - 90) % 360
        rotation = rotation - 180 if 90 < rotation < 270 else rotation  # never upside down
        axis.text(1.17 * np.cos(middle), 1.17 * np.sin(middle), labels[i], ha="center",
                  va="center", rotation=rotation, fontsize=9)
    for (i, j, end), span in spans.items():
        if end == "from":
            patch = PathPatch(_ribbon_path(span, spans[(i, j, "to")]), facecolor=colours(i),
                              edgecolor=colours(i), alpha=0.55, linewidth=0.5)
            axis.add_patch(patch)
    if not spans:
        axis.text(0, 0, "no confusions", ha="center", va="center")
    axis.set_xlim(-1.35, 1.35)
    axis.set_ylim(-1.35, 1.35)
    axis.set_aspect("equal")
    axis.axis("off")
    axis.set_title(f"{title}: confusions (chord width = count, colour = true genre)")
    return _save(figure, path)
