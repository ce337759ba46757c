"""Phase spreading (daemon/phases.py): sources started together fall due apart (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.harness import fake_model
from daemon.phases import PhaseSpreader
from tests.daemon_helpers import write_tone_wav

HOP_SECONDS, RATE_HZ = 3.0, 1000


def due_phases(n_sources: int, start_seconds: list[float]) -> list[float]:
    """Phase in the hop (seconds) at which each source's windows fall due once trimmed."""
    now = [0.0]
    spreader = PhaseSpreader(HOP_SECONDS, RATE_HZ, True, clock=lambda: now[0])
    phases = []
    for i in range(n_sources):
        now[0] = start_seconds[i]
        chunk = np.arange(10 * RATE_HZ, dtype=np.float32)
        kept = spreader.trim(f"s{i}", chunk)
        skipped = chunk.shape[0] - kept.shape[0]
        assert 0 <= skipped < HOP_SECONDS * RATE_HZ and kept[0] == skipped  # a prefix only
        phases.append((start_seconds[i] + skipped / RATE_HZ) % HOP_SECONDS)
    return phases


@pytest.mark.parametrize("starts", ["together", "in turn"])
def test_sources_started_together_fall_due_spread_over_the_hop(starts: str) -> None:
    """120 sources started within 0.1 s (or 0.7 s apart): no two fall due within 0.01 s,
    and no gap between neighbouring phases is wider than 2.5 shares of an even spread."""
    n_sources = 120
    step = 0.1 / n_sources if starts == "together" else 0.7
    phases = np.sort(due_phases(n_sources, [100.0 + i * step for i in range(n_sources)]))
    gaps = np.diff(np.append(phases, phases[0] + HOP_SECONDS))
    even = HOP_SECONDS / n_sources
    assert gaps.min() >= 0.4 * even and gaps.max() <= 2.5 * even, (gaps.min(), gaps.max())


def test_aligned_sources_would_all_fall_due_at_once_without_it() -> None:
    """The problem: without trimming, sources started together share one phase."""
    spreader = PhaseSpreader(HOP_SECONDS, RATE_HZ, False, clock=lambda: 100.0)
    chunk = np.ones(500, np.float32)
    assert all(spreader.trim(f"s{i}", chunk) is chunk for i in range(20))


def test_the_skip_spans_chunks_and_happens_once_per_source() -> None:
    """A skip longer than the first chunks eats them whole, then the rest of one; never again."""
    now = [0.0]
    spreader = PhaseSpreader(HOP_SECONDS, RATE_HZ, True, clock=lambda: now[0])
    spreader.trim("first", np.zeros(1, np.float32))  # phase 0: takes the k = 0 slot
    now[0] = 0.5  # the next slot is 0.618 * 3 s = 1.854 s: skip 1.354 s
    kept = [spreader.trim("b", np.arange(i * 400, (i + 1) * 400, dtype=np.float32))
            for i in range(6)]
    assert [k.shape[0] for k in kept] == [0, 0, 0, 246, 400, 400]
    assert kept[3][0] == 1354
    now[0] = 2.0  # a later chunk of the same source is never trimmed again
    assert spreader.trim("b", np.ones(7, np.float32)).shape[0] == 7


def test_bad_hop_or_rate_is_refused() -> None:
    assert PhaseSpreader(0.5, 1, True).hop_seconds == 0.5  # small but valid
    with pytest.raises(ValueError, match="hop_seconds > 0"):
        PhaseSpreader(0.0, RATE_HZ, True)
    with pytest.raises(ValueError, match="sample_rate_hz > 0"):
        PhaseSpreader(HOP_SECONDS, 0, True)


@pytest.mark.parametrize(("max_batch_size", "spread"), [(2, True), (3, False)])
def test_the_service_spreads_only_sources_one_batch_cannot_hold(tmp_path, max_batch_size: int,
                                                                spread: bool) -> None:
    """Three sources: spread when a batch holds 2, not when it holds all 3."""
    wav = write_tone_wav(tmp_path / "tone.wav", 440, 1.0)
    sources = [{"name": f"s{i}", "kind": "url", "url": str(wav)} for i in range(3)]
    config = config_from_dict({"server": {"port": 0}, "sources": sources,
                               "inference": {"max_batch_size": max_batch_size}})
    service = build_service(config, fake_model())
    assert service.phases.enabled is spread
    assert service.phases.hop_seconds == pytest.approx(config.window.hop_seconds, abs=0.2)
