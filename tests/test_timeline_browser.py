"""The page's per-source timeline strip ("what played when", last hour) in headless Chromium.

History rows seeded 50-40 and 30-20 minutes ago must appear where they belong on the strip
(read from GET /history), and the daemon's live predictions must extend it at the right end.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from daemon.harness import REPO_ROOT, free_port
from daemon.history_query import COLUMNS, SCHEMA
from tests.real_helpers import daemon_process, write_config
from tests.test_real_browser import DevTools, chromium

pytestmark = pytest.mark.timeout(180)
SEGMENTS_JS = """JSON.stringify([...document.querySelectorAll('.card .strip .seg')].map(s => ({
  genre: s.dataset.genre, left: parseFloat(s.style.left), width: parseFloat(s.style.width)})))"""
SEEDED_JS = """(() => { const g = [...document.querySelectorAll('.card .seg')]
  .map(s => s.dataset.genre); return g.includes('low') && g.includes('high') &&
  document.querySelector('.card .genre').textContent !== '\\u2014' ? 'ready' : g.join(); })()"""


def seed_history(path: Path, source: str, runs: list[tuple[float, float, str]],
                 hop_seconds: float = 2.0) -> int:
    """Rows every hop for each (from minutes ago, to minutes ago, genre) run; returns the count."""
    now = time.time()
    rows = []
    for from_minutes, to_minutes, genre in runs:
        t = now - from_minutes * 60
        while t <= now - to_minutes * 60:
            rows.append((None, source, t, 0, 30000, genre, 0.9, 0,
                         json.dumps({genre: 0.9}), "fake"))
            t += hop_seconds
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA)
        connection.executemany(f"INSERT INTO predictions VALUES "
                               f"({', '.join('?' * len(COLUMNS))})", rows)
    return len(rows)


async def test_timeline_strip_shows_history_and_live_predictions(tmp_path: Path) -> None:
    """Seeded runs sit at their minutes on the strip; live predictions reach 'now'."""
    database = tmp_path / "history.sqlite3"
    seed_history(database, "demo", [(50, 40, "low"), (30, 20, "high")])
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "demo", "kind": "demo"}],
                          history={"path": str(database)})
    page_url = f"http://127.0.0.1:{port}/"
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port)
        with chromium(page_url, tmp_path / "chromium-profile") as devtools_port:
            async with DevTools.attach(devtools_port, page_url) as page:
                await page.wait_until(SEEDED_JS, "ready", 90)
                segments = json.loads(await page.evaluate(SEGMENTS_JS))
                screenshot = await page.screenshot(tmp_path / "timeline.png")
    print(f"\ntimeline segments {segments}; screenshot: {screenshot}")
    by_genre = {s["genre"]: s for s in segments[:2]}
    assert [s["genre"] for s in segments[:2]] == ["low", "high"]
    assert by_genre["low"]["left"] == pytest.approx(100 * 10 / 60, abs=1.0)
    assert by_genre["low"]["width"] == pytest.approx(100 * 10 / 60, abs=1.0)
    assert by_genre["high"]["left"] == pytest.approx(100 * 30 / 60, abs=1.0)
    live = segments[-1]
    assert live["left"] + live["width"] > 98.0  # the newest prediction is at "now"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 5000
    assert "Traceback" not in daemon.log()


CHANGING_JS = """(() => {
  const p = (genre, raw, end) => ({source: "probe", genre, confidence: 0.8, wall_time: 0,
    probabilities: {jazz: 0.5, country: 0.5}, raw_probabilities: raw, window_end_ms: end});
  const shown = [];
  for (const [genre, raw, end] of [
      ["jazz", {jazz: 0.9, country: 0.1}, 30000],     // settled
      ["jazz", {jazz: 0.3, country: 0.7}, 33000],     // the window hears country: moving
      ["country", {jazz: 0.6, country: 0.4}, 36000],  // label moved, window still jazz
      ["country", {jazz: 0.2, country: 0.8}, 60000],  // settled on country
      ["country", {jazz: 0.5, country: 0.45}, 63000], // a small lead is no change
  ]) {
    showPrediction(p(genre, raw, end));
    const node = cards.get("probe").genre;
    shown.push(node.textContent + (node.classList.contains("changing") ? " *" : ""));
  }
  return JSON.stringify(shown);
})()"""


async def test_the_page_shows_a_change_as_a_change(tmp_path: Path) -> None:
    """While the window still holds the previous song the page says "changing: A -> B"."""
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "demo", "kind": "demo"}], history={"enabled": False})
    page_url = f"http://127.0.0.1:{port}/"
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port)
        with chromium(page_url, tmp_path / "chromium-profile") as devtools_port:
            async with DevTools.attach(devtools_port, page_url) as page:
                await page.wait_until("typeof showPrediction", "function", 30)
                shown = json.loads(await page.evaluate(CHANGING_JS))
    assert shown == ["jazz", "changing: jazz \u2192 country *", "changing: jazz \u2192 country *",
                     "country", "country"]
