"""A log filter that lets a repeating warning or error through a few times, then a summary."""

from __future__ import annotations

import logging
import time

BURST = 5
"""Records of one kind let through per interval."""
INTERVAL_SECONDS = 10.0


class RepeatLimiter(logging.Filter):
    """Per (logger, level, message template, exception type): BURST records per interval.

    Records below WARNING always pass. The first record after a suppressed stretch says how
    many were dropped, so a fault repeating thousands of times a second costs a few lines.
    """

    def __init__(self, burst: int = BURST, interval_seconds: float = INTERVAL_SECONDS) -> None:
        super().__init__()
        self._burst, self._interval_seconds = burst, interval_seconds
        self._windows: dict[tuple, list[float | int]] = {}
        """key -> [window start (monotonic s), records passed, records suppressed]."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to emit ``record`` (its message notes earlier suppressed ones)."""
        if record.levelno < logging.WARNING:
            return True
        error_type = type(record.exc_info[1]).__name__ if record.exc_info else None
        key = (record.name, record.levelno, str(record.msg), error_type)
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self._interval_seconds:
            suppressed = int(window[2]) if window is not None else 0
            if len(self._windows) > 1000:
                self._windows.clear()
            self._windows[key] = [now, 1, 0]
            if suppressed:
                record.msg = f"{record.getMessage()} ({suppressed} similar suppressed)"
                record.args = None
            return True
        if window[1] < self._burst:
            window[1] += 1
            return True
        window[2] += 1
        return False
