"""The one shape of every output: what the service tells an output, and what it asks of it.

The service holds a list of outputs built where the program is assembled
(daemon/assembly.py) and treats them alike: each gets every public source state and every
published prediction, is started before the sources, runs beside the pipeline and is stopped
after the sources are closed. An output never blocks the pipeline: ``on_state`` and
``on_prediction`` run on the event loop and only queue or record. Adding an output is one
module with an :class:`Output` subclass plus one line in ``daemon.assembly.OUTPUTS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.messages import Prediction, SourceState

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.metrics import DaemonMetrics

HistoryQuery = Callable[[dict[str, list[str]]], Awaitable[Any]]
"""Query parameters of GET /history -> its answer (ValueError on a bad parameter)."""


@dataclass(frozen=True)
class SourceStatus:
    """A source's public state, as every output receives it."""

    source: str
    """Source name."""
    kind: str
    """Source kind (device, url, stdin, tcp, demo...)."""
    state: SourceState
    """Public state (warming_up / silent / no_music refine live)."""
    message: str | None = None
    """Human-readable detail (redacted), or None."""


class Output:
    """Base of every output; the defaults do nothing, so an output overrides what it needs."""

    name = "output"
    """Key of the output's section in /healthz."""

    async def start(self) -> None:
        """Open or bind before the sources start (raise OSError to refuse the start)."""

    async def run(self) -> None:
        """Deliver until :meth:`stop` (a task beside the pipeline); default: nothing to run."""

    async def stop(self) -> None:
        """Flush what is queued (bounded in time) and close."""

    def on_state(self, status: SourceStatus) -> None:
        """A source's public state changed (event loop; never blocks)."""

    def on_prediction(self, prediction: Prediction, changed: bool) -> None:
        """A smoothed prediction was published; ``changed``: the label moved (never blocks)."""

    def health(self) -> dict[str, Any]:
        """This output's /healthz section."""
        return {"state": "ok"}

    def register_metrics(self, metrics: DaemonMetrics) -> None:
        """Export this output's counters through the daemon's metrics."""


@dataclass
class OutputContext:
    """What an output factory may use: the config, the model's facts and the daemon's hooks."""

    config: Config
    model_name: str
    labels: Sequence[str]
    sources: Sequence[str]
    """Source names, in config order."""
    metrics: DaemonMetrics
    health: Callable[[], dict[str, Any]]
    """The daemon's /healthz document."""
    spectrogram: Callable[[str], Awaitable[Any]] | None = None
    """Source name -> GET /sources/<name>/spectrogram.png's answer."""
    history_query: HistoryQuery | None = None
    """Set by the history output when it is configured (GET /history)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Options of the command line for outputs (e.g. ``quiet`` for the terminal)."""


OutputFactory = Callable[[OutputContext], Output | None]
"""Builds an output from the context, or None when the config leaves it off."""
