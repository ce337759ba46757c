"""Optional parts of the install: which extra brings a missing module, said in one line."""

from __future__ import annotations

import importlib.util

EXTRA_OF_MODULE = {"tensorflow": "keras", "keras": "keras", "matplotlib": "train",
                   "librosa": "bench", "psutil": "bench"}
"""Top-level module -> the pyproject.toml extra that installs it."""


def install_hint(module: str, purpose: str) -> str:
    """One line: ``purpose`` needs ``module``, which this install lacks, and the extra to add."""
    extra = EXTRA_OF_MODULE.get(module.split(".")[0], "test")
    return (f"{purpose} needs {module}, which this serve-only install lacks: "
            f"pip install 'genred[{extra}]' (in a checkout: scripts/dev test)")


def missing_extra_message(error: ImportError, purpose: str) -> str | None:
    """The install hint when ``error`` is a missing optional module, else None."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    if isinstance(error, ModuleNotFoundError) and name in EXTRA_OF_MODULE:
        return install_hint(name, purpose)
    return None


def keras_installed() -> bool:
    """Whether Keras (and so the keras runtime) can be imported in this install."""
    return importlib.util.find_spec("keras") is not None
