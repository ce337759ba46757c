"""Reduced-precision Keras runtime: a model rebuilt with a mixed dtype policy on every layer.

``mixed_bfloat16`` / ``mixed_float16`` keep the weights in float32 and compute in 16 bits;
input layers and the model's output layers stay float32, so the outputs are float32
probabilities. Nested models (e.g. the patch encoder and head inside TimeDistributed) are
rebuilt with the policy too, so their stages carry it.
"""

from __future__ import annotations

import logging
from typing import Any

from models.contract import ArtifactError

_LOGGER = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
"""Keras dtype policy name of each precision."""
_KEEP_DTYPE = ("InputLayer", "__keras_tensor__")
"""Config entries whose dtype is a tensor's, not a layer's policy."""


TFLITE_PRECISION = "float32"
"""The one precision a TFLite export runs in (smaller exports: genred export --quantize)."""
OPENVINO_PRECISIONS = ("float32", "bfloat16")
"""The precisions OpenVINO runs the export in (bfloat16 natively with avx512_bf16 or AMX)."""


def runtime_precision_error(runtime: str, precision: str) -> str | None:
    """Why ``runtime`` cannot compute in ``precision`` (None when it can): the one place of the
    rule that the TFLite runtime runs float32 only and OpenVINO float32 or bfloat16 (so auto
    picks Keras for another)."""
    if runtime == "tflite" and precision != TFLITE_PRECISION:
        return ("is for runtime keras or openvino (TFLite runs float32; for a smaller TFLite "
                "model use: genred export --quantize float16)")
    if runtime == "openvino" and precision not in OPENVINO_PRECISIONS:
        return f"is for runtime keras (OpenVINO runs {' or '.join(OPENVINO_PRECISIONS)})"
    return None


def check_precision(precision: str) -> str:
    """``precision`` when known; ArtifactError naming the known ones otherwise."""
    if precision not in PRECISIONS:
        raise ArtifactError(f"unknown precision {precision!r} (known: {list(PRECISIONS)})")
    return precision


def policy_config(name: str) -> dict[str, Any]:
    """A serialised Keras DTypePolicy ``name``."""
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def set_policy(config: Any, policy: str) -> Any:
    """A copy of a (nested) layer/model config with every layer's dtype set to ``policy``.

    Input layers and the output layers of each (nested) model keep float32: the softmax and
    the stages' outputs (e.g. the patch head's logits) in full precision."""
    if isinstance(config, list):
        return [set_policy(item, policy) for item in config]
    if not isinstance(config, dict):
        return config
    copy = {key: set_policy(value, policy) for key, value in config.items()}
    inner = copy.get("config")
    if "class_name" in copy and isinstance(inner, dict):
        if copy["class_name"] not in _KEEP_DTYPE and "dtype" in inner:
            inner["dtype"] = policy_config(policy)
        if isinstance(inner.get("layers"), list):
            _keep_outputs_float32(inner)
    return copy


def _keep_outputs_float32(model_config: dict[str, Any]) -> None:
    """Set the output layers of a model's config (its own level, not nested) to float32."""
    outputs = model_config.get("output_layers")
    if outputs is None:  # Sequential: the last layer
        last = model_config["layers"][-1:] or [{}]
        outputs = [[last[0].get("config", {}).get("name"), 0, 0]]
    elif outputs and isinstance(outputs[0], str):  # one output: [name, node, tensor]
        outputs = [outputs]
    names = {output[0] for output in outputs if isinstance(output, list | tuple)}
    for layer in model_config["layers"]:
        conf = layer.get("config", {})
        if conf.get("name") in names and layer.get("class_name") not in (
                "InputLayer", "Functional", "Sequential", "TimeDistributed"):
            conf["dtype"] = policy_config("float32")


def with_precision(model: Any, precision: str) -> Any:
    """``model`` for ``precision``: float32 unchanged, else rebuilt with the mixed policy."""
    check_precision(precision)
    if precision == "float32":
        return model
    import keras

    policy = POLICIES[precision]
    config = set_policy(model.get_config(), policy)
    if isinstance(config.get("layers"), list):
        _keep_outputs_float32(config)
    try:
        rebuilt = type(model).from_config(config)
        rebuilt.set_weights(model.get_weights())
    except Exception as error:  # deserialisation errors come in many types
        raise ArtifactError(f"cannot rebuild model {model.name!r} for {policy} "
                            f"({type(error).__name__}: {error})") from error
    _LOGGER.info("model %s rebuilt with dtype policy %s (keras %s)", model.name, policy,
                 keras.__version__)
    return rebuilt


def model_policy(model: Any) -> str:
    """The mixed policy ``model``'s layers (nested ones included) compute in, or float32."""
    for layer in _all_layers(model):
        if layer.dtype_policy.name != "float32":
            return layer.dtype_policy.name
    return "float32"


def _all_layers(layer: Any) -> list[Any]:
    """``layer``'s plain sub-layers, recursively (through models and TimeDistributed)."""
    found = []
    children = list(getattr(layer, "layers", []))
    wrapped = getattr(layer, "layer", None)
    if wrapped is not None:
        children.append(wrapped)
    for child in children:
        nested = hasattr(child, "layers") or getattr(child, "layer", None) is not None
        if not nested and child.__class__.__name__ != "InputLayer":
            found.append(child)
        found.extend(_all_layers(child))
    return found
