"""Cells of the results table: a result file, a summary, a met flag."""

from __future__ import annotations

import json
from typing import Any

from bench.common import RESULTS_DIR


def load(name: str) -> dict[str, Any] | None:
    """bench/results/<name>.json, or None when not measured."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summary_cell(summary: dict[str, float], scale: float = 1.0, unit: str = "s",
                 digits: int = 3) -> str:
    """'median (p5–p95 a–b) unit' of a summarize() dict."""
    if not summary or not summary.get("n"):
        return "—"
    m, lo, hi = (summary[k] * scale for k in ("median", "p5", "p95"))
    return f"{m:.{digits}f} {unit} (p5–p95 {lo:.{digits}f}–{hi:.{digits}f})"


def met(ok: bool | None) -> str:
    """'yes', '**no**' or '—' (no goal)."""
    return "—" if ok is None else ("yes" if ok else "**no**")
