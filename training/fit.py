"""The Keras part of ``genred train``: fit with augmentation, test, save the artifact."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import keras
import numpy as np

from models.artifact import contract_for, save_artifact
from models.registry import MODEL_KINDS
from training.callbacks import TqdmProgress, TrainingTimer, run_callbacks
from training.data import (
    SliceImages,
    augmentation_layers,
    describe_device,
    predict_probabilities,
    training_wrapper,
)
from training.distribute import replica_scope
from training.manifest import SliceRow, genres_of
from training.plots import history_png

_LOGGER = logging.getLogger(__name__)


def _datasets(args: argparse.Namespace, data_dir: Path, parts: dict[str, list[SliceRow]],
              labels: list[str], shape: tuple[int, ...]) -> dict[str, SliceImages]:
    """Shuffled training batches and ordered validation/test batches (empty splits left out)."""
    data = {"train": SliceImages(data_dir, parts["train"], labels, args.batch_size, shuffle=True,
                                 seed=args.seed, shape=shape, steps=args.steps_per_epoch)}
    for name in ("valid", "test"):
        if parts.get(name):
            data[name] = SliceImages(data_dir, parts[name], labels, args.batch_size, shape=shape)
        else:
            _LOGGER.warning("the %s split is empty", name)
    return data


def _fit(args: argparse.Namespace, model: keras.Model, data: dict[str, SliceImages],
         run_dir: Path) -> tuple[dict, TrainingTimer]:
    """Fit ``model`` behind the augmentation layers; returns history and the timer."""
    augment = augmentation_layers(args.shift, args.zoom, args.rotation, seed=args.seed)
    wrapper = training_wrapper(model, augment)
    wrapper.compile(optimizer=keras.optimizers.Adam(learning_rate=args.learning_rate),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    monitor = "val_loss" if "valid" in data else "loss"
    if monitor == "loss":
        _LOGGER.warning("no validation split: early stopping watches the training loss")
    timer = TrainingTimer()
    callbacks = [*run_callbacks(run_dir, monitor, args.patience), timer,
                 TqdmProgress(args.epochs, len(data["train"]))]
    history = wrapper.fit(data["train"], validation_data=data.get("valid"), epochs=args.epochs,
                          callbacks=callbacks, verbose=0)
    history_png(history.history, run_dir / "history.png")
    return history.history, timer


def _test_metrics(model: keras.Model, data: dict[str, SliceImages]) -> dict:
    """Test accuracy and slice count (empty when there is no test split)."""
    if "test" not in data:
        return {}
    probabilities = predict_probabilities(model, data["test"])
    accuracy = float(np.mean(probabilities.argmax(axis=1) == data["test"].targets))
    _LOGGER.info("test accuracy %.4f on %d slices", accuracy, len(data["test"].rows))
    return {"test_accuracy": accuracy, "test_slices": len(data["test"].rows)}


def _training_summary(args: argparse.Namespace, data_dir: Path, rows: list[SliceRow],
                      parts: dict[str, list[SliceRow]], history: dict, settings: dict) -> dict:
    """The contract's training section (data summary and settings)."""
    monitor = history.get("val_loss") or history.get("loss") or [0.0]
    return {
        "dataset": str(data_dir.resolve()),
        "split": settings,
        "slices": {name: len(part) for name, part in parts.items()},
        "songs": {name: len({r.source for r in part}) for name, part in parts.items()},
        "n_songs": len({row.source for row in rows}),
        "genres": genres_of(rows),
        "seed": args.seed,
        "epochs_requested": args.epochs,
        "epochs_run": len(monitor),
        "best_epoch": int(np.argmin(monitor)) + 1,
        "weights": args.weights,
        "augmentation": {"shift": args.shift, "zoom": args.zoom, "rotation": args.rotation},
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "steps_per_epoch": args.steps_per_epoch,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "device": describe_device(),
    }


def train_and_save(args: argparse.Namespace, data_dir: Path, rows: list[SliceRow],
                   parts: dict[str, list[SliceRow]], settings: dict) -> dict:
    """Train, test and save the artifact; returns the summary printed by the command."""
    with replica_scope(getattr(args, "data_parallel", None)) as replicas:
        keras.utils.set_random_seed(args.seed)
        labels = genres_of(rows)
        _LOGGER.info("training %s on %s, %d genres", args.model_kind, describe_device(),
                     len(labels))
        model = MODEL_KINDS[args.model_kind].build(labels, args.weights)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        data = _datasets(args, data_dir, parts, labels, shape)
        run_dir = Path(args.runs_dir) / args.name
        started = time.monotonic()
        history, timer = _fit(args, model, data, run_dir)
    training = _training_summary(args, data_dir, rows, parts, history, settings)
    training["replicas"] = replicas
    training["training_seconds"] = round(time.monotonic() - started, 2)
    training["seconds_per_training_image"] = timer.seconds_per_image(args.batch_size)
    metrics = _test_metrics(model, data)
    contract = contract_for(args.name, args.model_kind, labels, shape, training=training,
                            metrics=metrics)
    folder = save_artifact(model, Path(args.models_dir) / args.name, contract)
    return {"artifact": str(folder), "run_dir": str(run_dir), **metrics,
            "epochs_run": training["epochs_run"],
            "seconds_per_training_image": training["seconds_per_training_image"]}
