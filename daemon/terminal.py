"""What ``genred run`` hears, on the terminal: one line per label change per source.

A line when a source's genre changes (time, source, genre, confidence) and when it turns
silent, no music, reconnecting, ended or error; nothing while the label stays. An output
like the others (daemon/output.py); on when the command line asks (``genred run`` does
unless ``--quiet``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from daemon.messages import Prediction, SourceState
from daemon.output import Output, OutputContext, SourceStatus

SHOWN_STATES = {
    SourceState.SILENT: "silent",
    SourceState.NO_MUSIC: "no music",
    SourceState.RECONNECTING: "reconnecting",
    SourceState.ENDED: "ended",
    SourceState.ERROR: "error",
}
"""States worth a line, as the line says them (connecting/warming_up/live are the log's)."""


@dataclass
class TerminalLines(Output):
    """Writes a line to ``stream`` whenever what a source hears changes."""

    name = "terminal"

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    _shown: dict[str, str] = field(default_factory=dict)
    """Per source: the genre or state its last line said."""
    _width: int = 8
    """Source column width (grows to the longest name seen)."""

    def on_state(self, status: SourceStatus) -> None:
        """A source's public state changed: a line for silent/no music/ended/..."""
        said = SHOWN_STATES.get(SourceState(status.state))
        if said is not None:
            self._say(status.source, said, "")

    def on_prediction(self, prediction: Prediction, changed: bool = False) -> None:
        """A smoothed prediction: a line when its genre differs from the last line's."""
        self._say(prediction.source, prediction.genre, f"{prediction.confidence:.2f}",
                  prediction.wall_time)

    def _say(self, source: str, what: str, detail: str, wall_time: float | None = None) -> None:
        """Write ``time source what detail`` unless the source's last line said ``what``."""
        if self._shown.get(source) == what:
            return
        self._shown[source] = what
        self._width = max(self._width, len(source))
        clock = time.strftime("%H:%M:%S", time.localtime(wall_time))
        line = f"{clock}  {source:<{self._width}}  {what:<12} {detail}".rstrip()
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stdout closed (a pipe's reader went away): stop
            self.stream = open(os.devnull, "w")  # noqa: SIM115 (lives as long as we do)


def terminal_output(context: OutputContext) -> TerminalLines | None:
    """The terminal lines when the command line asks for them (``terminal=True``)."""
    return TerminalLines() if context.extra.get("terminal") else None
