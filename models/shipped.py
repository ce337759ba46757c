"""Where the shipped default model lies: inside the installed ``models`` package (package data)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "genred-default"
"""genred-default's lean artifact (contract, TFLite export, Keras model, model card); the
same folder in a checkout and in an installed wheel (pyproject.toml package-data)."""
DEFAULT_MODEL_NAME = DEFAULT_MODEL_DIR.name
