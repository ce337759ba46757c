"""bench/results/*.json -> the results table of bench/README.md (between its markers)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import REPO_ROOT, RESULTS_DIR
from bench.table_capacity import capacity_table
from bench.table_cells import load as _load
from bench.table_cells import met as _met
from bench.table_cells import summary_cell as _s
from bench.table_default import default_model_rows

README = REPO_ROOT / "bench" / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _inference_rows(rows: list[list[str]]) -> None:
    keras, lite = _load("inference"), _load("inference_tflite")
    if keras:
        for batch, summary in keras["seconds_per_window"].items():
            share = keras.get("of_measured_peak", {}).get(batch)
            gflops = 2 * keras.get("model_gmacs", 15.5) / summary["median"]
            rows.append([f"1. VGG16 inference, Keras, batch {batch}", _s(summary) + " per window"
                         + (f" = {gflops:.0f} GFLOP/s, {share:.0%} of the measured fp32 peak"
                            if share else ""), "ceiling", "—"])
        matmul, theory = keras.get("matmul", {}), keras.get("theoretical", {})
        if matmul:
            peak = matmul["measured_peak_gflops"]
            clock = peak / (theory["cores"] * theory["flops_per_cycle_per_core"])
            rows.append(["1. fp32 limit (4096² matmul, 2 threads)",
                         f"measured: TensorFlow {matmul['tensorflow']['gflops_best']:.0f}, numpy "
                         f"{matmul['numpy']['gflops_best']:.0f} GFLOP/s. Theoretical from "
                         f"/proc/cpuinfo: {theory['how']} = {theory['peak_gflops']:.0f} GFLOP/s"
                         + (f"; the matmul beats it, so the cores run at ≥ {clock:.1f} GHz (boost;"
                            " the hypervisor reports the base clock): the measured peak is the "
                            "limit used" if peak > theory["peak_gflops"] else "")
                         + f". VGG16: {keras['model_gmacs']:.2f} G multiply-adds per window",
                         "reference", "—"])
    if lite:
        for batch, summary in lite["seconds_per_window"].items():
            rows.append([f"1. VGG16 inference, TFLite {lite['quantize']}, batch {batch}",
                         _s(summary) + " per window", "ceiling", "—"])


def _latency_rows(rows: list[list[str]]) -> None:
    for name in ("latency", "latency_tflite"):
        result = _load(name)
        if not result:
            continue
        label = "Keras" if result["runtime"] == "keras" else f"TFLite {result['quantize']}"
        lat = result["latency_seconds"]
        rows.append([f"2. End-to-end latency ({label}, {lat['n']} windows, hop "
                     f"{result['hop_seconds']} s)",
                     f"median {lat['median'] * 1000:.0f} ms, p99 {lat['p99'] * 1000:.0f} ms "
                     f"(first window {result['first_window_seconds'] * 1000:.0f} ms)",
                     f"p99 ≤ 1.25 × batch-1 + 30 ms = {result['goal_seconds'] * 1000:.0f} ms",
                     _met(result["goal_met"])])


STREAMS_RUNS = (
    ("streams_before", "Keras, before: ffmpeg -re in every decoder, looped files restarted"),
    ("streams", "Keras"),
    ("streams_tflite", "TFLite int8"),
)
"""Streams results in table order; a *_before file keeps the limit it was judged against."""


def _streams_rows(rows: list[list[str]]) -> None:
    for name, label in STREAMS_RUNS:
        result = _load(name)
        if not result:
            continue
        limit, fraction = result["compute_limit_streams"], result["fraction_of_limit"]
        latest = _load("inference" if name == "streams" else "inference_tflite")
        if name.endswith("_before"):
            latest = None
        if latest and result["streams_sustained"]:  # the newest per-window figure
            limit = round(result["hop_seconds"] / latest["best_seconds_per_window"], 1)
            fraction = result["streams_sustained"] / limit
        per_window = [r["inference_seconds_per_batch"] / r["mean_batch_size"]
                      for r in result["final_runs"] if r["mean_batch_size"]]
        finals = "; ".join(f"N={r['n_sources']}: {r['dropped']} dropped, "
                           f"{'sustained' if r['sustained'] else 'not sustained'}"
                           for r in result["final_runs"])
        finals += "".join(f"; N={r['n_sources']} dropped {r['dropped']} in its "
                          f"{r['seconds']:.0f}-s search run" for r in result["search_runs"]
                          if not r["sustained"])
        rows.append([f"3. Streams per machine ({label}, hop {result['hop_seconds']:.2f} s, "
                     f"{result['final_runs'][0]['seconds']:.0f} s runs)" if result["final_runs"]
                     else f"3. Streams per machine ({label})",
                     f"**{result['streams_sustained']}** sources ({finals}); compute limit "
                     f"{limit} (hop / best s per window of item 1) → {fraction:.0%}; "
                     f"in the daemon {min(per_window, default=0):.3f} s per window"
                     if limit else str(result["streams_sustained"]),
                     "≥ 85 % of the compute limit",
                     _met(fraction >= 0.85 if fraction is not None else None)])


def _fanout_rows(rows: list[list[str]]) -> None:
    result = _load("fanout")
    if not result:
        return
    delay = result["delay_seconds"]
    rows.append([f"4. Fan-out to {result['clients']} subscribers (fake model)",
                 f"publish→receipt {_s(delay, 1000, 'ms', 1)}; p99 {delay['p99'] * 1000:.1f} ms; "
                 f"last subscriber p99 {result['broadcast_done_seconds']['p99'] * 1000:.1f} ms",
                 "p99 ≤ 50 ms", _met(result["goal_met"])])
    rows.append([f"4. RSS with {result['stalled_clients']} non-reading clients",
                 f"{result['rss_mb_with_stalled']['median']:.0f} MB, growth "
                 f"{result['rss_mb_growth_with_stalled']:+.1f} MB over "
                 f"{result['seconds_per_phase']:.0f} s (before clients "
                 f"{result['rss_mb_before_clients']:.0f} MB; readers' p99 meanwhile "
                 f"{result['delay_seconds_with_stalled']['p99'] * 1000:.0f} ms)", "flat",
                 _met(abs(result["rss_mb_growth_with_stalled"]) < 5)])


def _other_rows(rows: list[list[str]]) -> None:
    front = _load("frontend")
    if front:
        librosa = front.get("librosa_mel_x_realtime")
        rows.append(["5. Front-end (BFFT, 1 core)",
                     f"offline {front['offline_x_realtime']:.0f}× real time; streaming "
                     f"{front['streaming_seconds_per_audio_second_chunk4410'] * 1000:.2f} ms "
                     "per s of audio" + (f"; librosa melspectrogram {librosa:.0f}× real time"
                                         if librosa else ""), "—", "—"])
    song = _load("classify")
    if song:
        rows.append([f"6. `genred classify`, {song['song_seconds']:.0f}-s song "
                     f"({song['n_slices']} slices)",
                     f"{song['end_to_end_x_realtime']}× real time end to end "
                     f"({song['end_to_end_seconds']['median']:.1f} s); "
                     f"{song['excluding_load_x_realtime']}× without model load", "—", "—"])
    for name, label in (("memory", "Keras"), ("memory_tflite", "TFLite int8")):
        memory = _load(name)
        if not memory:
            continue
        parts = [f"{n} source{'s' if n != '1' else ''}: {r['rss_mb']['median']:.0f} MB "
                 f"(+ ffmpeg USS {r['ffmpeg_uss_mb_total'] or 0:.0f} MB)"
                 for n, r in memory["sources"].items()]
        first = next(iter(memory["sources"].values()))
        rows.append([f"7. Daemon RSS (VGG16, {label})", "; ".join(parts) + f"; model loaded, "
                     f"no audio yet: {first['rss_mb_model_loaded']:.0f} MB", "—", "—"])
    lite = _load("tflite")
    if lite:
        keras = lite["keras"]
        rows.append(["8. Keras fp32 reference (batch 1)",
                     f"{_s(keras['seconds_per_window'])}; RSS {keras['rss_mb']:.0f} MB; "
                     f"file {keras['file_mb']:.0f} MB", "—", "—"])
        for mode in ("none", "float16", "int8"):
            entry = lite[f"tflite_{mode}"]
            flip = entry.get("largest_flip_margin")
            rows.append([f"8. TFLite {mode if mode != 'none' else 'fp32'}",
                         f"{_s(entry['seconds_per_window'])} = {entry['speedup']}× Keras; top-1 "
                         f"agreement {entry['top1_agreement']:.1%} of "
                         f"{lite['n_windows_compared']} windows"
                         + (f" (largest Keras top-1 margin flipped {flip:.4f})" if flip else "")
                         + f"; RSS {entry['rss_mb']:.0f} MB; file {entry['file_mb']:.0f} MB",
                         "≥ 2× and ≥ 98 %",
                         _met(entry["speedup"] >= 2 and entry["top1_agreement"] >= 0.98)])


def _library_rows(rows: list[list[str]]) -> None:
    """Streamed classify on long files; files per second locally and on a Dask cluster."""
    memory = _load("classify_memory")
    if memory:
        for run in memory["runs"]:
            runtime = run.get("runtime", "keras")
            runtime = f"auto = {run['chosen']}" if "chosen" in run and runtime == "auto" \
                else {"auto": "auto = TFLite fp32, LiteRT", "keras": "Keras"}.get(runtime,
                                                                                 runtime)
            rows.append([f"9. Streamed `genred classify`, {run['minutes']}-min file "
                         f"({memory['model']}, runtime {runtime}, 1 process)",
                         f"max RSS {run['max_rss_mb']} MB; {run['x_realtime']}× real time end "
                         f"to end (load {run['loadavg_after'][0]:.1f} after)",
                         "RSS ≤ 600 MB, ≥ 150× (issue 22)",
                         _met(run["max_rss_mb"] <= 600 and run["x_realtime"] >= 150)])
    cluster = _load("cluster")
    if cluster:
        for key, label in (("local_1", "1 local worker"), ("local_2", "2 local workers"),
                           ("cluster_2", "2-worker Dask cluster (loopback)")):
            run = cluster[key]
            rows.append([f"10. Files per second, {label} ({cluster['model']}, 30-s clips)",
                         f"{run['files_per_second_steady']} steady, "
                         f"{run['files_per_second_end_to_end']} end to end ({run['files']} "
                         f"files, {run['wall_seconds']} s; load {run['loadavg_after'][0]:.1f} "
                         "after)", "—", "—"])


def build_table() -> str:
    """The markdown block (machine line + table)."""
    rows: list[list[str]] = []
    _inference_rows(rows)
    _latency_rows(rows)
    _streams_rows(rows)
    default_model_rows(rows)
    _fanout_rows(rows)
    _other_rows(rows)
    _library_rows(rows)
    results = [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))
               if not p.name.startswith("dev_")]
    machines = [r["machine"] for r in results  # tools' results have none (or a note)
                if isinstance(r.get("machine"), dict)]
    if not machines:
        return "No results yet: run `.venv/bin/python -m bench.run_all`."
    first = machines[0]
    loads = [m["loadavg"][0] for m in machines]
    dates = sorted(m["date_utc"] for m in machines)
    lite = _load("tflite") or {}
    head = (f"Machine: {first['cpu']} (family {first['cpu_family']}), {first['cores']} cores, "
            f"Python {first['python']}; measured {dates[0]} – {dates[-1]} (UTC); 1-min load "
            f"average at the end of each benchmark {min(loads):.1f}–{max(loads):.1f}.")
    if lite:
        head += (f" TFLite models: {', '.join(Path(m).name for m in lite['models'])} "
                 f"({'trained' if lite['trained'] else 'random weights'}), interpreter "
                 f"{lite['interpreter']}.")
    lines = [head, "", "| figure | result | goal | met |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    capacity = capacity_table()
    return "\n".join(lines + (["", capacity] if capacity else []))


def write_table() -> Path:
    """Replace the block between the markers of bench/README.md (appended if missing)."""
    text = README.read_text() if README.is_file() else "# Benchmarks\n"
    block = f"{START}\n{build_table()}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)
    return README
