"""genred run's terminal lines: one per label change per source, and silent/no-music states."""

from __future__ import annotations

import io
import re
import time

from daemon.messages import Prediction, SourceState
from daemon.output import SourceStatus
from daemon.terminal import TerminalLines

LINE = re.compile(r"^\d\d:\d\d:\d\d  (\S+) +(\S+(?: music)?)(?: +(\d\.\d\d))?$")


def prediction(source: str, genre: str, confidence: float) -> Prediction:
    return Prediction(source=source, window_start_ms=0, window_end_ms=30000,
                      wall_time=time.time(), genre=genre, confidence=confidence,
                      probabilities={genre: confidence}, raw_probabilities={genre: confidence},
                      model="m")


def said(stream: io.StringIO) -> list[tuple[str, ...]]:
    lines = stream.getvalue().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    return [tuple(g for g in m.groups() if g is not None) for m in parsed]


def test_one_line_per_change_per_source_and_the_quiet_states():
    stream = io.StringIO()
    terminal = TerminalLines(stream)
    terminal.on_state(SourceStatus("radio", "url", SourceState.WARMING_UP))
    terminal.on_prediction(prediction("radio", "jazz", 0.61), False)
    terminal.on_prediction(prediction("radio", "jazz", 0.83), False)  # same label: no line
    terminal.on_prediction(prediction("line-in", "jazz", 0.5), False)  # its own source
    terminal.on_prediction(prediction("radio", "rock", 0.7), False)
    terminal.on_state(SourceStatus("radio", "url", SourceState.SILENT))
    terminal.on_state(SourceStatus("radio", "url", SourceState.SILENT))
    terminal.on_state(SourceStatus("radio", "url", SourceState.LIVE))
    terminal.on_prediction(prediction("radio", "rock", 0.9), False)  # back after silence
    terminal.on_state(SourceStatus("line-in", "url", SourceState.NO_MUSIC))
    assert said(stream) == [("radio", "jazz", "0.61"), ("line-in", "jazz", "0.50"),
                            ("radio", "rock", "0.70"), ("radio", "silent"),
                            ("radio", "rock", "0.90"), ("line-in", "no music")]


def test_a_closed_stdout_does_not_stop_the_daemon():
    stream = io.StringIO()
    terminal = TerminalLines(stream)
    stream.close()
    terminal.on_prediction(prediction("radio", "jazz", 0.6), False)
    terminal.on_prediction(prediction("radio", "rock", 0.6), False)
