"""The page shows each source's spectrogram (the picture the model sees) in headless Chromium.

A fake-model daemon plays the demo source; once warm, the card's image must be loaded from
GET /sources/demo/spectrogram.png (224x224: the BFFT image), visible, and reloaded at the
next hop. The screenshot is saved in the test's tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from daemon.harness import REPO_ROOT, free_port
from tests.real_helpers import daemon_process, write_config
from tests.test_real_browser import DevTools, chromium

pytestmark = pytest.mark.timeout(180)
IMAGE_JS = """JSON.stringify((() => { const i = document.querySelector('.card .picture img');
  const r = i.getBoundingClientRect();
  return {src: i.getAttribute('src') || '', loaded: i.complete && i.naturalWidth > 0,
          shown: getComputedStyle(i).visibility === 'visible', width: i.naturalWidth,
          height: i.naturalHeight, top: r.top, bottom: r.bottom, left: r.left,
          right: r.right}; })())"""
LOADED_JS = f"(() => {{ const s = JSON.parse({IMAGE_JS}); " \
            "return s.loaded && s.shown ? 'loaded' : s.src; })()"


async def test_page_shows_the_spectrogram_and_refreshes_it(tmp_path: Path) -> None:
    """The card's picture is the source's PNG, visible, and replaced at the next hop."""
    port = free_port()
    config = write_config(tmp_path / "config.yaml", REPO_ROOT / "models" / "genred-default",
                          port, [{"name": "demo", "kind": "demo"}],
                          history={"path": str(tmp_path / "history.sqlite3")})
    page_url = f"http://127.0.0.1:{port}/"
    with daemon_process(config, tmp_path / "daemon.log", fake_model=True) as daemon:
        await daemon.wait_ready(port)
        with chromium(page_url, tmp_path / "chromium-profile") as devtools_port:
            async with DevTools.attach(devtools_port, page_url) as page:
                await page.call("Emulation.setDeviceMetricsOverride", width=900, height=800,
                                deviceScaleFactor=1, mobile=False)
                await page.wait_until(LOADED_JS, "loaded", 90)
                first = json.loads(await page.evaluate(IMAGE_JS))
                await page.wait_until(
                    f"(() => {{ const s = JSON.parse({IMAGE_JS}); return s.loaded && "
                    f"s.src !== {json.dumps(first['src'])} ? 'next' : ''; }})()", "next", 20)
                latest = json.loads(await page.evaluate(IMAGE_JS))
                screenshot = await page.screenshot(tmp_path / "spectrogram-page.png")
    print(f"\npicture {latest}; screenshot: {screenshot}")
    assert first["src"].startswith("/sources/demo/spectrogram.png?t=")
    assert (latest["width"], latest["height"]) == (224, 224)
    with Image.open(screenshot) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 0 <= latest["left"] < latest["right"] <= width  # inside the viewport
        assert 0 <= latest["top"] < latest["bottom"] <= height
        box = (int(latest["left"]), int(latest["top"]), int(latest["right"]),
               int(latest["bottom"]))
        colours = image.convert("RGB").crop(box).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20  # a picture, not a blank box
    assert "Traceback" not in daemon.log()
