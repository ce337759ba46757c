"""Errors of the training commands."""

from __future__ import annotations

from models.errors import GenredError


class InputError(GenredError):
    """Bad user input (paths, options, data); the CLI prints it as one line, exit status 2."""
