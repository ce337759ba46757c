"""The one root of genred's own errors: a caller may catch :class:`GenredError` for any of them.

Each error keeps its specific base too (a config error is still a ValueError), so code that
catches the standard class keeps working. ``genred`` prints any GenredError that reaches the
top as one line and exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GenredError(Exception):
    """Base of every error genred raises on purpose (bad input, bad artifact, bad config...)."""
