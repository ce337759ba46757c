"""Rows of the results table for the default model (genred-default), beside VGG16's."""

from __future__ import annotations

from bench.common import cpu_label
from bench.table_cells import load as _load
from bench.table_cells import met as _met

DEFAULT_STREAMS_RUNS = (("streams_default_tflite_300s", "max batch 8"),
                        ("streams_default_tflite_1src", "baseline"),
                        ("streams_default_300s_workahead", "max batch 8, patches encoded as they "
                         "exist, also while warming"),
                        ("streams_default_300s_batch32", "max batch 32"),
                        ("streams_default_300s", "max batch 8"),
                        ("streams_default_60s", "max batch 8"), ("streams_default", ""))
"""Single runs (bench.streams --model default --only N) of genred-default, in table order."""


def default_model_rows(rows: list[list[str]]) -> None:
    """genred-default (musicnn patch head, streamed): latency, streams, RSS, beside VGG16."""
    for name in ("latency_default", "latency_default_tflite"):
        lat = _load(name)
        if not lat:
            continue
        summary = lat["latency_seconds"]
        rows.append([f"2. End-to-end latency, genred-default ({_runtime(lat)}, "
                     f"{summary['n']} windows, "
                     f"hop {lat['hop_seconds']:.3f} s, {cpu_label(lat['machine'])}, "
                     f"load {lat['load_average_1min']})",
                     f"median {summary['median'] * 1000:.0f} ms, p99 "
                     f"{summary['p99'] * 1000:.0f} ms (first window "
                     f"{lat['first_window_seconds'] * 1000:.0f} ms)",
                     f"p99 ≤ {lat['goal_seconds'] * 1000:.0f} ms", _met(lat["goal_met"])])
    for name, batch in DEFAULT_STREAMS_RUNS:
        run = _load(name)
        if not run:
            continue
        split = run["cpu_split"]
        rows.append([f"3. Streams, genred-default ({_runtime(run)}, {batch}, "
                     f"{run['n_sources']} sources, {cpu_label(run['machine'])}, "
                     f"hop {run['hop_seconds']:.3f} s, {run['seconds']:.0f}-s run)",
                     f"{run['dropped']} dropped, "
                     f"{'sustained' if run['sustained'] else 'not sustained'} (audio clock ≥ "
                     f"{run['audio_rate_min']:.2f} of wall); {run['mean_batch_size']} windows "
                     f"per batch, {run['inference_seconds_per_batch']:.3f} s per batch; "
                     f"cores: inference {split['other_threads_cores']}, event loop "
                     f"{split['event_loop_cores']}, decoders {split['decoders_cores']}, idle "
                     f"{split['machine_idle_cores']}; load {run.get('load_average_1min_start')}"
                     f"–{run.get('load_average_1min_end')}; RSS {run['rss_mb']['median']:.0f} MB"
                     f" (+ ffmpeg USS {run['ffmpeg_uss_mb_total'] or 0:.0f} MB)"
                     + _responsiveness(run)] + (
                         ["≥ 100 sources, 5 min, 0 dropped", _met(
                             run["sustained"] and run["seconds"] >= 290)]
                         if run["n_sources"] >= 100 else ["reference", "—"]))
    _export_rows(rows)


def _responsiveness(run: dict) -> str:
    """'; /healthz … ms, prediction delivery … ms' (median / p99) when the run probed them."""
    if "healthz_ms" not in run:
        return ""
    health, delivery = run["healthz_ms"], run["prediction_delivery_ms"]
    return (f"; /healthz {health['median']:.1f} / p99 {health['p99']:.1f} ms, prediction to a "
            f"subscriber {delivery['median']:.1f} / p99 {delivery['p99']:.1f} ms (median / p99)")


def _runtime(result: dict) -> str:
    """'Keras' or 'TFLite fp32' (the shipped export) of a daemon benchmark's result."""
    return "TFLite fp32" if result.get("runtime") == "tflite" else "Keras"


def _export_rows(rows: list[list[str]]) -> None:
    """genred-default's TFLite exports against its Keras model (bench/tflite_default.py)."""
    lite = _load("tflite_default")
    if not lite:
        return
    keras = lite["keras"]
    window, patch = keras["ms_per_window"]["median"], keras["ms_per_patch_streaming"]["median"]
    rows.append([f"8. genred-default, Keras fp32 reference ({lite['n_windows']} windows)",
                 f"{window:.0f} ms per window (10 patches), {patch:.1f} ms per streamed patch; "
                 f"RSS {keras['rss_mb']:.0f} MB", "—", "—"])
    for mode in ("none", "float16", "int8"):
        entry = lite[f"tflite_{mode}"]
        ms_window = entry["ms_per_window"]["median"]
        ms_patch = entry["ms_per_patch_streaming"]["median"]
        agreement = entry["outcome_agreement"]
        rows.append([f"8. genred-default, TFLite {mode if mode != 'none' else 'fp32'}",
                     f"{ms_window:.0f} ms per window = {window / ms_window:.2f}× Keras; "
                     f"{ms_patch:.1f} ms per streamed patch = {patch / ms_patch:.2f}× Keras; "
                     f"outcome agreement {agreement:.1%} (max |Δp| "
                     f"{entry['max_abs_probability_difference']:.2g}); RSS "
                     f"{entry['rss_mb']:.0f} MB; file {entry['file_mb']:.1f} MB",
                     "≥ 98 % agreement", _met(agreement >= 0.98)])
