"""What /healthz shows a caller without the token, when one is set: liveness and states only
(no source messages, which hold ffmpeg's error text, and no paths, URLs or output errors)."""

from __future__ import annotations

from typing import Any

PUBLIC_KEYS = ("status", "model", "labels", "uptime_seconds")
"""Top-level /healthz keys anyone may read."""
PUBLIC_SOURCE_KEYS = ("name", "kind", "state")
"""Keys of each source anyone may read."""
OUTPUTS = ("history", "mqtt")
"""Output sections whose ``state`` alone anyone may read."""


def public_health(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (the full /healthz) cut to what an unauthenticated caller may see."""
    public = {key: document[key] for key in PUBLIC_KEYS if key in document}
    sources = document.get("sources")
    if isinstance(sources, list):
        public["sources"] = [{key: source.get(key) for key in PUBLIC_SOURCE_KEYS}
                             for source in sources if isinstance(source, dict)]
    for output in OUTPUTS:
        section = document.get(output)
        if isinstance(section, dict):
            public[output] = {"state": section.get("state")}
    return public
