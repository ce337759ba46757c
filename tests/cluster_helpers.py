"""A tiny model artifact for cluster tests (the loopback cluster is training.cluster_harness)."""

from __future__ import annotations

from pathlib import Path

LABELS = ["low", "mid", "high"]


def tiny_artifact(folder: Path) -> Path:
    """The tiny CNN (BFFT input) with random weights, saved as an artifact: loads in seconds."""
    from models.artifact import contract_for, save_artifact
    from models.tiny import IMAGE_SHAPE, MODEL_KIND, build_tiny_cnn

    model = build_tiny_cnn(LABELS, weights=None)
    contract = contract_for("test-tiny", MODEL_KIND, LABELS, IMAGE_SHAPE,
                            training={"note": "random weights, for tests"})
    return save_artifact(model, folder, contract)
