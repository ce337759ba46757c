"""Streams per machine: most real-time file sources the daemon sustains with no dropped window.

Each run starts ``genred run`` with N ``url`` sources (clips of ../shared/data, looped, read
at real-time pace by ffmpeg), waits until every source is warm (30 s), then watches for
``--seconds``: a run is sustained when no window was dropped (/metrics
``genred_windows_dropped_total``), every source classified one window per hop of the audio
it delivered (a window below the silence level counts: it is gated, not dropped; the dog
howl clip has some) and its audio clock kept up with the wall clock (see :func:`judge`). The
daemon's RSS (and its ffmpeg children's USS) is sampled during the run. The search steps N
up from 85 % of the compute limit (hop / best per-window inference time from
bench/results/inference.json); the best N is then re-run for ``--final-seconds`` (and N+1 when
it holds; N-1, N-2, ... until one holds when it does not).

Run: .venv/bin/python -m bench.streams [--seconds 60] [--final-seconds 300] [--start N]
     [--model vgg16|default] (default = the shipped genred-default: hop 2 s -> 2.992 s)
     One core, comparable across machines: taskset -c 0 .venv/bin/python -m bench.streams ...
     (the daemon and its decoders inherit the affinity; results record ``cores_usable``).
     Overload: ``--only`` 1.5x the sustained N; the run records the daemon's overload ratio and
     the sources' effective hops (bench/capacity.sh runs issue 22's set).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    MODELS,
    RESULTS_DIR,
    bench_model,
    daemon_process,
    model_hop_seconds,
    music_clips,
    setup_logging,
    summarize,
    write_result,
)
from bench.responsiveness import Probe
from daemon.harness import free_port, http_get, metric
from models.loader import RUNTIMES

_LOGGER = logging.getLogger("bench.streams")
HOP_SECONDS = 2.0
HOP_EXACT = 15 * 5906 / 44100
"""The 2-s hop after rounding to whole time bins (VGG16)."""


def daemon_config(n_sources: int, runtime: str, max_batch: int,
                  quantize: str = "int8", model: str = "vgg16") -> dict[str, Any]:
    """N looped real-time file sources on the VGG16 (or the default) artifact."""
    clips = music_clips()
    if not clips:
        raise SystemExit("no clips in ../shared/data")
    step = max(1, len(clips) // max(n_sources, 1))
    sources = [{"name": f"s{i:02d}", "kind": "url", "url": str(clips[(i * step) % len(clips)]),
                "loop": True, "realtime": True} for i in range(n_sources)]
    return {"model": str(bench_model(model, runtime, quantize)), "sources": sources,
            "log_level": "warning",
            "window": {"hop_seconds": HOP_SECONDS},
            "inference": {"runtime": runtime, "max_batch_size": max_batch}}


def _snapshot(port: int) -> dict[str, Any]:
    """Counters of /metrics and /healthz at one moment."""
    text = http_get(port, "/metrics")
    health = json.loads(http_get(port, "/healthz"))
    return {"t": time.monotonic(), "dropped": metric(text, "genred_windows_dropped_total"),
            "inference_sum": metric(text, "genred_inference_seconds_sum"),
            "inference_count": metric(text, "genred_inference_seconds_count"),
            "batch_sum": metric(text, "genred_inference_batch_size_sum"),
            "overload_ratio": health.get("overload_ratio"),
            "effective_hops": [s["effective_hop_seconds"] for s in health["sources"]
                               if s.get("effective_hop_seconds") is not None],
            "sources": {s["name"]: (s["windows_classified"] + s.get("windows_silent", 0),
                                    s["audio_seconds"], s["state"]) for s in health["sources"]},
            "dropped_by_source": {s["name"]: s.get("windows_dropped", 0)
                                  for s in health["sources"]},
            "waits": {s["name"]: s.get("window_wait_max_seconds") or 0.0
                      for s in health["sources"]}}


def _rss_mb(process: psutil.Process) -> tuple[float, float]:
    """(daemon RSS, sum of its children's USS: memory only they use) in MB."""
    own = process.memory_info().rss / 1e6
    children = 0.0
    for child in process.children(recursive=True):
        try:
            children += child.memory_full_info().uss / 1e6
        except psutil.Error:
            continue
    return own, children


def _cpu_seconds(process: psutil.Process) -> dict[str, float]:
    """CPU seconds so far: the daemon's event-loop (main) thread, its other threads (inference),
    its ffmpeg children (live and reaped), and the machine's idle time."""
    times = process.cpu_times()
    threads = {t.id: t.user_time + t.system_time for t in process.threads()}
    main = threads.pop(process.pid, 0.0)
    decoders = times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        decoders += child_times.user + child_times.system
    return {"event_loop": main, "other_threads": sum(threads.values()), "decoders": decoders,
            "machine_idle": psutil.cpu_times().idle}


def _cpu_split(start: dict[str, float], end: dict[str, float], seconds: float
               ) -> dict[str, float]:
    """Cores used on average between two :func:`_cpu_seconds` snapshots."""
    return {f"{key}_cores": round((end[key] - start[key]) / seconds, 3) for key in start}


def _wait_warm(port: int, n_sources: int, timeout: float = 120.0) -> None:
    """Until every source is live (warm) or failing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s[2] for s in _snapshot(port)["sources"].values()]
        if len(states) == n_sources and all(s in ("live", "silent", "no_music")
                                            for s in states):
            return
        time.sleep(1.0)
    raise RuntimeError(f"sources not warm after {timeout:.0f} s: {states}")


def _wait_classified(port: int, n_windows: int, timeout: float) -> None:
    """Until every source has ``n_windows`` classified windows (the warm-up burst is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s[0] >= n_windows for s in _snapshot(port)["sources"].values()):
            return
        time.sleep(1.0)
    _LOGGER.warning("not every source classified %d windows in %.0f s", n_windows, timeout)


def choose_first(config: dict[str, Any]) -> dict[str, Any]:
    """runtime auto's choice for the daemon's model, measured (or read) before it starts."""
    from models.runtime_choice import choose_runtime

    choice = choose_runtime(config["model"], "auto", "auto")
    _LOGGER.info("runtime auto: %s %s (%s)", choice.runtime, choice.precision, choice.reason)
    return choice.health()


def sustain(n_sources: int, seconds: float, runtime: str = "keras",
            max_batch: int = 8, model: str = "vgg16") -> dict[str, Any]:
    """One run with ``n_sources`` for ``seconds`` after warm-up; its figures."""
    port = free_port()
    config = daemon_config(n_sources, runtime, max_batch, model=model)
    chosen = choose_first(config) if runtime == "auto" else None
    hop = model_hop_seconds(model, HOP_SECONDS)
    with daemon_process(config, port, f"streams-{n_sources}") as process:
        proc = psutil.Process(process.pid)
        rss_idle = _rss_mb(proc)[0]
        _wait_warm(port, n_sources, 120.0 + n_sources)  # 100 decoders start in turn
        time.sleep(2 * hop)  # the first windows (and the model's first calls)
        _wait_classified(port, 2, timeout=float(n_sources))  # default model: first 10 patches
        first = _snapshot(port)
        load_start = round(psutil.getloadavg()[0], 2)
        cpu_start, split_start = proc.cpu_times(), _cpu_seconds(proc)
        rss, children, waits = [], [], dict(first["waits"])
        with Probe(port) as probe:
            while time.monotonic() - first["t"] < seconds:
                time.sleep(min(5.0, seconds / 10))
                own, kids = _rss_mb(proc)
                rss.append(own)
                children.append(kids)
                for name, wait in _snapshot(port)["waits"].items():
                    waits[name] = max(waits.get(name, 0.0), wait)
        last = _snapshot(port)
        cpu_end, split_end = proc.cpu_times(), _cpu_seconds(proc)
    elapsed = last["t"] - first["t"]
    windows = [last["sources"][n][0] - first["sources"][n][0] for n in first["sources"]]
    audio = [last["sources"][n][1] - first["sources"][n][1] for n in first["sources"]]
    expected = elapsed / hop
    batches = max(last["inference_count"] - first["inference_count"], 1)
    result = {
        "n_sources": n_sources, "seconds": round(elapsed, 1), "runtime": runtime,
        "runtime_chosen": chosen,
        "model": model, "max_batch_size": max_batch, "hop_seconds": round(hop, 4),
        "load_average_1min_start": load_start,
        "load_average_1min_end": round(psutil.getloadavg()[0], 2),
        "dropped": int(last["dropped"] - first["dropped"]),
        "dropped_most_sources": sorted(
            ((last["dropped_by_source"][n] - first["dropped_by_source"].get(n, 0), n)
             for n in last["dropped_by_source"]), reverse=True)[:5],
        "windows_fewest_sources": sorted(zip(windows, first["sources"], strict=True))[:5],
        "windows_min": min(windows), "windows_expected": round(expected, 1),
        "window_wait_max_seconds": summarize(list(waits.values()), 3) if waits else None,
        "window_wait_longest_sources": sorted(((round(w, 3), n) for n, w in waits.items()),
                                              reverse=True)[:5],
        "audio_rate_min": round(min(audio) / elapsed, 4),
        "mean_batch_size": round((last["batch_sum"] - first["batch_sum"]) / batches, 2),
        "inference_seconds_per_batch": round(
            (last["inference_sum"] - first["inference_sum"]) / batches, 4),
        "daemon_cpu_fraction": round(
            (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / elapsed, 3),
        "cpu_split": _cpu_split(split_start, split_end, elapsed),
        "rss_mb_model_loaded": round(rss_idle, 1), "rss_mb": summarize(rss, 1),
        "rss_mb_growth": round(rss[-1] - rss[0], 1) if rss else None,
        "ffmpeg_uss_mb_total": round(max(children), 1) if children else None,
        **_overload(last, hop),
        **probe.result(),
    }
    result["window_shortfall_max"] = round(max(
        a / hop - w for w, a in zip(windows, audio, strict=True)), 2)
    result["sustained"] = judge(result)
    _LOGGER.info("N=%d: %s", n_sources, {k: result[k] for k in (
        "sustained", "dropped", "windows_min", "windows_expected", "audio_rate_min",
        "mean_batch_size", "inference_seconds_per_batch", "daemon_cpu_fraction", "cpu_split")})
    return result


def _overload(last: dict[str, Any], hop: float) -> dict[str, Any]:
    """The daemon's overload ratio and the sources' effective hops at the end of a run."""
    hops = last["effective_hops"]
    return {"overload_ratio": last["overload_ratio"],
            "effective_hop_seconds": summarize(hops, 3) if hops else None,
            "effective_hop_max_in_hops": round(max(hops) / hop, 2) if hops else None}


def judge(run: dict[str, Any]) -> bool:
    """Sustained: no window dropped, every source classified one window per hop of the audio
    it delivered (within 1.5), and its audio kept within 1 % of the wall clock (the daemon
    paces looped files itself, so a source that falls behind is starved of CPU)."""
    shortfall = run.get("window_shortfall_max")
    if shortfall is None:  # older results: the slowest source's audio and fewest windows
        hop = run.get("hop_seconds", HOP_EXACT)
        shortfall = run["audio_rate_min"] * run["seconds"] / hop - run["windows_min"]
    return run["dropped"] == 0 and shortfall <= 1.5 and run["audio_rate_min"] >= 0.99


def confirmed_streams(runs: list[dict[str, Any]], finals: list[dict[str, Any]]) -> int:
    """Largest N whose long run was sustained and none of whose short runs failed."""
    failed = {r["n_sources"] for r in runs if not r["sustained"]}
    return max((r["n_sources"] for r in finals if r["sustained"] and r["n_sources"]
                not in failed), default=0)


def rejudge(path: Path) -> dict[str, Any]:
    """Apply :func:`judge` to the runs of a results file again (criteria changed)."""
    result = json.loads(path.read_text())
    for run in result["search_runs"] + result["final_runs"]:
        run["sustained"] = judge(run)
    result["streams_sustained"] = confirmed_streams(result["search_runs"], result["final_runs"])
    limit = result["compute_limit_streams"]
    result["fraction_of_limit"] = round(result["streams_sustained"] / limit, 3) if limit else None
    result.pop("machine", None)
    return result


def compute_limit(runtime: str) -> tuple[float | None, float | None]:
    """(hop / best per-window seconds, that time) from the inference results, if measured."""
    name = "inference.json" if runtime == "keras" else "inference_tflite.json"
    path = RESULTS_DIR / name
    if not path.is_file():
        return None, None
    best = json.loads(path.read_text())["best_seconds_per_window"]
    return HOP_EXACT / best, best


def search(seconds: float, final_seconds: float, start: int | None, runtime: str,
           max_batch: int, model: str = "vgg16") -> dict[str, Any]:
    """Step N up from ``start`` while sustained, then confirm N and N+1 with long runs."""
    limit, best = compute_limit(runtime)
    n = start or (max(1, math.floor(0.85 * limit)) if limit else 4)
    runs = []
    while True:
        runs.append(sustain(n, seconds, runtime, max_batch, model))
        if not runs[-1]["sustained"]:
            if n == 1 or any(r["sustained"] for r in runs):
                break
            n = max(1, min(n - 1, int(n * 0.85)))  # far above: larger steps down
            continue
        if any(not r["sustained"] and r["n_sources"] == n + 1 for r in runs):
            break
        n += 1
    good = max((r["n_sources"] for r in runs if r["sustained"]), default=0)
    finals = confirm(good, final_seconds, runtime, max_batch, model)
    confirmed = confirmed_streams(runs, finals)
    return {"runtime": runtime, "hop_seconds": round(HOP_EXACT, 4), "max_batch_size": max_batch,
            "compute_limit_streams": round(limit, 2) if limit else None,
            "best_seconds_per_window": best, "streams_sustained": confirmed,
            "fraction_of_limit": round(confirmed / limit, 3) if limit else None,
            "search_runs": runs, "final_runs": finals}


def confirm(good: int, final_seconds: float, runtime: str, max_batch: int,
            model: str = "vgg16") -> list[dict[str, Any]]:
    """Long runs from ``good`` down until one is sustained; then ``good + 1`` as the boundary
    when ``good`` itself held (a failed long run of N + 1 already shows it otherwise)."""
    finals: list[dict[str, Any]] = []
    for n in range(good, 0, -1):
        finals.append(sustain(n, final_seconds, runtime, max_batch, model))
        if finals[-1]["sustained"]:
            break
    if finals and finals[0]["sustained"]:
        finals.append(sustain(good + 1, final_seconds, runtime, max_batch, model))
    return finals


def main() -> None:
    """Search and write bench/results/streams[_<runtime>].json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="search run length")
    parser.add_argument("--final-seconds", type=float, default=300.0)
    parser.add_argument("--start", type=int, help="first N (default: 85 %% of the limit)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="keras",
                        help="auto: the daemon's measured choice (measured here first, so the "
                             "daemon starts from the cache)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--model", choices=MODELS, default="vgg16")
    parser.add_argument("--only", type=int, help="a single run with N sources (no search)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--rejudge", action="store_true",
                        help="re-apply the sustained criteria to the results file only")
    args = parser.parse_args()
    setup_logging()
    name = args.name or ("streams" if args.runtime == "keras" else "streams_tflite")
    if args.rejudge:
        machine = json.loads((RESULTS_DIR / f"{name}.json").read_text())["machine"]
        result = rejudge(RESULTS_DIR / f"{name}.json")
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps({"machine": machine, **result},
                                                             indent=2) + "\n")
        return
    if args.only:
        result = sustain(args.only, args.seconds, args.runtime, args.max_batch, args.model)
    else:
        result = search(args.seconds, args.final_seconds, args.start, args.runtime,
                        args.max_batch, args.model)
    write_result(name, result)


if __name__ == "__main__":
    main()
