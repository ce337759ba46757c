"""RealtimePacer: chunk due times against a fake clock."""

from __future__ import annotations

import pytest

from daemon.sources.pacing import RealtimePacer


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_seconds = 100.0

    def __call__(self) -> float:
        return self.now_seconds


def test_chunks_are_due_when_the_audio_before_them_has_played() -> None:
    clock = FakeClock()
    pacer = RealtimePacer(1000, clock=clock)
    assert pacer.delay_seconds(100) == 0.0  # first chunk at once
    assert pacer.delay_seconds(100) == pytest.approx(0.1)  # immediately after: wait 0.1 s
    clock.now_seconds += 0.15
    assert pacer.delay_seconds(100) == pytest.approx(0.05)  # due at 0.2 s


def test_a_late_consumer_gets_no_wait_then_catches_up_without_reanchoring() -> None:
    clock = FakeClock()
    pacer = RealtimePacer(1000, max_lag_seconds=1.0, clock=clock)
    pacer.delay_seconds(100)
    clock.now_seconds += 0.5  # 0.4 s late for the second chunk
    assert pacer.delay_seconds(100) == 0.0
    assert pacer.delay_seconds(300) == 0.0  # due at 0.2 s: still late
    assert pacer.delay_seconds(100) == pytest.approx(0.0)  # due at 0.5 s = now
    assert pacer.delay_seconds(100) == pytest.approx(0.1)
    assert pacer.reanchors == 0


def test_a_stalled_consumer_reanchors_instead_of_bursting() -> None:
    clock = FakeClock()
    pacer = RealtimePacer(1000, max_lag_seconds=1.0, clock=clock)
    pacer.delay_seconds(100)
    clock.now_seconds += 5.0
    assert pacer.delay_seconds(100) == 0.0
    assert pacer.reanchors == 1
    assert pacer.delay_seconds(100) == pytest.approx(0.1)  # paced from the new anchor


def test_rejects_a_bad_rate() -> None:
    with pytest.raises(ValueError, match="sample_rate_hz"):
        RealtimePacer(0)
