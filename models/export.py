"""TensorFlow Lite export: a lighter CPU runtime for an artifact's Keras model.

``genred export MODEL_DIR --format tflite --quantize {none,float16,int8}`` converts the
artifact's Keras model with ``tf.lite.TFLiteConverter`` and writes ``model.tflite`` next to
it, noting it in contract.json's ``extra``::

    "extra": {"tflite": {"file": "model.tflite", "quantize": "int8", ...}}

``quantize``: ``none`` (fp32), ``float16`` (fp16 weights, fp32 compute on CPU) or ``int8``
(dynamic-range: int8 weights, activations quantized on the fly). The daemon and
``genred classify`` use the export with runtime ``auto`` (the default) or ``tflite``; the
contract's checks still apply.
The interpreter is ``ai_edge_litert`` when installed, else ``tf.lite.Interpreter``
(XNNPACK delegate, ``num_threads`` threads). A kind may export a stage instead of the whole
model (``export_stage`` in models/registry.py): a patch model exports its per-patch stage,
``"stage": "patch_logits"`` in the note, and its runtime pools windows
(models/patch_tflite.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path

from models.contract import ArtifactError, update_contract
from models.loader import load_artifact
from models.registry import MODEL_KINDS
from models.tflite_runtime import TFLITE_FILE

_LOGGER = logging.getLogger(__name__)

QUANTIZE_MODES = ("none", "float16", "int8")


def export_tflite(folder: str | Path, quantize: str = "none", filename: str = TFLITE_FILE,
                  overwrite: bool = True) -> Path:
    """Convert ``folder``'s Keras model to ``folder/filename``; records it in contract.json.

    ``overwrite=False``: an existing ``filename`` is an ArtifactError (the converter's output
    is not byte-for-byte reproducible, so a shipped export is not replaced by accident).
    """
    if quantize not in QUANTIZE_MODES:
        raise ArtifactError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    folder = Path(folder)
    if not overwrite and (folder / filename).exists():
        raise ArtifactError(f"{folder / filename} exists (an export may differ byte for byte "
                            f"from it): pass --force to replace it")
    import tensorflow as tf

    started = time.monotonic()
    loaded = load_artifact(folder)
    graph, note = MODEL_KINDS[loaded.contract.model_kind].export_graph(loaded.model)
    converter = tf.lite.TFLiteConverter.from_keras_model(graph)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signature
        flatbuffer = converter.convert()
    path = folder / filename
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(flatbuffer)
    partial.replace(path)
    update_contract(folder, extra={"tflite": {
        "file": filename, "quantize": quantize, "from": loaded.contract.model_file,
        "bytes": len(flatbuffer), "tensorflow": tf.__version__, **note}})
    _LOGGER.info("exported %s (%s, %.1f MB) in %.1f s", path, quantize, len(flatbuffer) / 1e6,
                 time.monotonic() - started)
    return path
