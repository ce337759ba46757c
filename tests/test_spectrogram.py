"""The picture the model sees: rendering, per-hop cache, and GET /sources/<name>/spectrogram.png."""

from __future__ import annotations

import asyncio
import io
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from daemon.harness import fake_model
from daemon.service import ModelHandle
from daemon.spectrogram import (
    MEL_RANGE,
    Spectrograms,
    SpectrogramUnavailable,
    mel_picture,
    picture_maker,
    png_bytes,
    source_of_path,
)
from daemon.windower import Windower
from models.bfft import DEFAULT_PARAMS
from models.features import BfftExtractor
from models.patch_serving import PatchExtractor, PatchPooling
from models.resample import SAMPLE_RATE_HZ
from tests.daemon_helpers import write_tone_wav
from tests.test_service import make_config, running

pytestmark = pytest.mark.timeout(120)


def tone(frequency_hz: float, seconds: float) -> np.ndarray:
    """A -6 dBFS sine at the contract rate."""
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def loudest_row(picture: np.ndarray) -> int:
    """Row (0 = top) with the most green, the loudest colour of both maps' upper half."""
    return int(np.argmax(picture[..., 1].astype(np.float64).mean(axis=1)))


@pytest.mark.parametrize(("frequency_hz", "top"), [(9000.0, True), (300.0, False)])
def test_bfft_picture_is_the_model_input_with_high_tones_on_top(frequency_hz, top) -> None:
    extractor = BfftExtractor(DEFAULT_PARAMS)
    audio = tone(frequency_hz, 31.0)
    extractor.push(audio)
    make = picture_maker(extractor, None)
    assert make is not None
    picture = make()
    assert picture.shape == (224, 224, 3) and picture.dtype == np.uint8
    np.testing.assert_array_equal(picture, extractor.features(lambda: audio))
    row = loudest_row(picture)
    assert abs(row - DEFAULT_PARAMS.row_of_frequency(frequency_hz)) <= 2
    assert (row < 112) == top


@pytest.mark.parametrize(("frequency_hz", "top"), [(6000.0, True), (200.0, False)])
def test_mel_picture_is_ten_patches_side_by_side_with_high_tones_on_top(frequency_hz,
                                                                        top) -> None:
    extractor = PatchExtractor(10)
    extractor.push(tone(frequency_hz, 31.0))
    assert extractor.frontend.n_patches_total == 10
    make = picture_maker(extractor, None)
    assert make is not None
    picture = make()
    assert picture.shape == (96, 10 * 187, 3)
    row = loudest_row(picture)
    assert (row < 24) if top else (row > 72)
    assert picture[row].mean() > 3 * picture[95 - row].mean()


def test_mel_picture_colour_range_and_whole_window_patches() -> None:
    patches = np.zeros((2, 187, 96), np.float32)
    patches[1, :, 0] = MEL_RANGE[1] + 1.0  # newest patch, lowest band, beyond the range
    picture = mel_picture(patches)
    assert picture.shape == (96, 374, 3)
    assert tuple(picture[-1, 200]) == (252, 255, 164) and tuple(picture[-1, 100]) == (0, 0, 4)
    make = picture_maker(object(), patches)  # whole-window musicnn: the window's own patches
    assert make is not None and make().shape == (96, 374, 3)
    assert picture_maker(object(), None) is None  # silent window: nothing to show


def test_png_round_trip_and_paths() -> None:
    picture = np.zeros((96, 20, 3), np.uint8)
    picture[0, :, 0] = 255
    with Image.open(io.BytesIO(png_bytes(picture))) as image:
        assert image.format == "PNG" and image.size == (20, 96)
        assert image.getpixel((3, 0)) == (255, 0, 0) and image.getpixel((3, 95)) == (0, 0, 0)
    assert source_of_path("/sources/line%20in/spectrogram.png") == "line in"
    assert source_of_path("/sources/a/b/spectrogram.png") is None
    assert source_of_path("/sources//spectrogram.png") is None


async def test_rendered_once_per_hop_and_unavailable_while_warming() -> None:
    windower = Windower(BfftExtractor(DEFAULT_PARAMS), SAMPLE_RATE_HZ, 2.0, -50.0)
    spectrograms = Spectrograms({"a": windower})
    windower.push(tone(440.0, 5.0))
    with pytest.raises(SpectrogramUnavailable, match="warming up"):
        await spectrograms.png("a")
    assert (await spectrograms.response("a")).status_code == 503
    assert (await spectrograms.response("nope")).status_code == 404
    window = windower.push(tone(440.0, 26.0))
    assert window is not None
    spectrograms.on_window("a", window)
    first, second = await asyncio.gather(spectrograms.png("a"), spectrograms.png("a"))
    assert first is second and spectrograms.renders == 1
    window = windower.push(tone(3000.0, 2.1))
    assert window is not None
    spectrograms.on_window("a", window)
    assert await spectrograms.png("a") != first and spectrograms.renders == 2


def fetch(port: int, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """(status, content type, body) of a request, errors included."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


async def test_http_png_of_a_live_source_404_and_503(tmp_path) -> None:
    fast = write_tone_wav(tmp_path / "fast.wav", 9000, 40.0)
    slow = write_tone_wav(tmp_path / "slow.wav", 9000, 60.0)
    config = make_config([{"name": "fast", "kind": "url", "url": str(fast), "realtime": False},
                          {"name": "slow", "kind": "url", "url": str(slow)}])
    async with running(config, fake_model()) as service:
        port = service.publisher.port
        for _ in range(200):
            status, content_type, body = await asyncio.to_thread(
                fetch, port, "/sources/fast/spectrogram.png?t=1")
            if status == 200:
                break
            assert status == 503 and b"warming up" in body, body
            await asyncio.sleep(0.1)
        head = await asyncio.to_thread(fetch, port, "/sources/fast/spectrogram.png", "HEAD")
        missing = await asyncio.to_thread(fetch, port, "/sources/nope/spectrogram.png")
        warming = await asyncio.to_thread(fetch, port, "/sources/slow/spectrogram.png")
    assert status == 200 and content_type == "image/png"
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "PNG" and image.size == (224, 224)
        picture = np.asarray(image.convert("RGB"))
    assert loudest_row(picture) < 112  # the 9-kHz tone lights the upper half
    assert head[0] == 200 and head[2] == b""
    assert missing[0] == 404 and missing[1] == "application/json" and b"nope" in missing[2]
    assert warming[0] == 503 and b"warming up" in warming[2]


def fake_patch_model() -> ModelHandle:
    """A musicnn patch model (streamed patches, pooled logits) with a numpy encoder."""
    def encode(patches: np.ndarray) -> np.ndarray:
        return np.stack([patches[..., band].mean(axis=(1, 2))
                         for band in (slice(0, 32), slice(32, 64), slice(64, 96))], axis=1)

    pooling = PatchPooling(encode, temperature=1.0, n_patches=10, n_outputs=3)
    return ModelHandle(name="fake-patches", labels=("low", "mid", "high"), serving=pooling)


async def test_http_mel_patches_of_a_patch_model_and_the_token(tmp_path) -> None:
    wav = write_tone_wav(tmp_path / "tone.wav", 6000, 40.0)
    config = make_config([{"name": "f", "kind": "url", "url": str(wav), "realtime": False}],
                         server={"port": 0, "token": "s3cret"})
    async with running(config, fake_patch_model()) as service:
        port = service.publisher.port
        for _ in range(300):
            status, content_type, body = await asyncio.to_thread(
                fetch, port, "/sources/f/spectrogram.png?token=s3cret")
            if status == 200:
                break
            assert status == 503, body
            await asyncio.sleep(0.1)
        unauthorized = await asyncio.to_thread(fetch, port, "/sources/f/spectrogram.png")
    assert status == 200 and content_type == "image/png"
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (1870, 96)
        picture = np.asarray(image.convert("RGB"))
    assert loudest_row(picture) < 24  # 6 kHz: the top mel bands
    assert unauthorized[0] == 401 and b"PNG" not in unauthorized[2]
