"""``genred classify`` over many files: folders expanded, a Dask cluster or a local process
pool, a resumable JSON-lines results file, per-file errors reported at the end."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from tqdm import tqdm

from models.loader import RUNTIMES
from models.outcome import SILENCE_RMS_DBFS
from models.precision import PRECISIONS
from models.tflite_runtime import usable_cores
from training import classify
from training.classify import IN_PROCESS_PARALLEL_CALLS, classify_task, format_song
from training.errors import InputError
from training.slicing import AUDIO_EXTENSIONS

_LOGGER = logging.getLogger(__name__)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files and URLs as given; a folder becomes its audio files (recursive, sorted)."""
    found: list[str] = []
    for item in inputs:
        if "://" not in item and Path(item).is_dir():
            found += sorted(str(p) for p in Path(item).rglob("*")
                            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            found.append(item)
    return found


def done_files(output: Path) -> set[str]:
    """Files that already have a result (not an error) in a JSON-lines results file."""
    done: set[str] = set()
    if not output.is_file():
        return done
    with output.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                _LOGGER.warning("%s line %d is not JSON (an interrupted write?); ignored",
                                output, number)
                continue
            if isinstance(record, dict) and "error" not in record and isinstance(
                    record.get("file"), str):
                done.add(record["file"])
    return done


def end_partial_line(output: Path) -> None:
    """End the file's last line if an interrupted write left it without a newline."""
    if not output.is_file() or output.stat().st_size == 0:
        return
    with output.open("rb+") as stream:
        stream.seek(-1, os.SEEK_END)
        if stream.read(1) != b"\n":
            stream.write(b"\n")


def append_result(output: Path, result: dict) -> None:
    """Append one result as a JSON line and flush it to disk."""
    with output.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(result) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def classify_library(args: argparse.Namespace) -> int:
    """Classify every input on the cluster or local pool; exit status 1 when any failed."""
    from models.contract import ArtifactError, check_contract, read_contract
    from models.runtime_choice import choose_runtime
    from training.cluster import ModelPreload, open_client, run_tasks

    files = expand_inputs(args.files)
    if args.cluster:  # workers run elsewhere: a local path must not depend on our folder
        files = [str(Path(f).resolve()) if Path(f).exists() else f for f in files]
    output = Path(args.output) if args.output else None
    if output is not None:
        done = done_files(output)
        if done & set(files):
            print(f"genred classify: {len(done & set(files))} of {len(files)} files already "
                  f"in {output}: skipped", file=sys.stderr)
        files = [f for f in files if f not in done]
        end_partial_line(output)  # the next result starts on a line of its own
    model_dir = str(Path(args.model_dir).resolve())
    check_contract(read_contract(model_dir))  # a broken artifact stops here, not per file
    # runtime auto: the daemon's measurement (once per machine and model, cached), judged by
    # wall time per patch: one file as fast as the cores allow
    choice = choose_runtime(model_dir, args.runtime, args.precision, criterion="wall",
                            on_measure=lambda note: print(f"genred classify: {note}",
                                                          file=sys.stderr))
    args.runtime, args.precision = choice.runtime, choice.precision
    _LOGGER.info("runtime %s %s (%s)", choice.runtime, choice.precision, choice.reason)
    workers = max(1, min(args.workers, len(files)))
    results, errors = [], []
    in_process = args.cluster is None and workers == 1  # open_client's rule
    parallel = min(IN_PROCESS_PARALLEL_CALLS, usable_cores()) if in_process else 1
    check_model_loads(model_dir, args.runtime, args.precision, in_process, parallel)
    with open_client(args.cluster, workers) as client:
        task_args = (model_dir, args.hop_seconds, args.silence_dbfs, client is None,
                     args.runtime, args.precision, parallel)
        preload = ModelPreload(model_dir, args.runtime, args.precision)
        for outcome in run_tasks(client, classify_task, files, task_args, preload,
                                 desc="classifying", fatal=(ArtifactError,)):
            result = outcome.result or {"file": outcome.item, "error": outcome.error}
            if output is not None:
                append_result(output, result)
            if "error" in result:
                errors.append(result)
            elif not args.json:
                tqdm.write(format_song(result), file=sys.stdout)
            results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
    for failed in errors:
        print(f"genred classify: error: {failed['file']}: {failed['error']}", file=sys.stderr)
    if errors:
        print(f"genred classify: {len(errors)} of {len(results)} files failed", file=sys.stderr)
    return 1 if errors else 0


def check_model_loads(model_dir: str, runtime: str, precision: str, in_process: bool,
                      parallel_calls: int = 1) -> None:
    """Load the model here first where that is cheap (this process classifies, or a TFLite
    model), so a broken model is one error (ArtifactError), not one per file."""
    from models.contract import read_contract
    from models.loader import EXPORT_RUNTIMES, load_model, resolve_runtime
    from training.cluster import worker_model

    if in_process:
        worker_model(model_dir, runtime, precision, parallel_calls)  # kept: the tasks use it
    elif resolve_runtime(read_contract(model_dir), runtime, precision) in EXPORT_RUNTIMES:
        load_model(model_dir, runtime, None, precision)  # workers load their own; a Keras
        # one would cost GBs


def add_library_options(parser: argparse.ArgumentParser) -> None:
    """--cluster, --workers and --output of ``genred classify``."""
    parser.add_argument("--cluster", metavar="tcp://HOST:PORT",
                        help="Dask scheduler to run on (workers need genred, the model folder "
                             "and the files at the same paths)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local worker processes without --cluster (default: CPU cores; "
                             "1 = in this process)")
    parser.add_argument("--output", metavar="RESULTS.jsonl",
                        help="append each file's result as a JSON line; files already there "
                             "are skipped on a rerun")


def resolve_model_dir(args: argparse.Namespace) -> str:
    """--model; else a first FILE that is a model folder (the old MODEL_DIR FILE... form);
    else the model of --config or ./config.yaml; else the shipped default model."""
    if args.model_dir:
        return args.model_dir
    if len(args.files) > 1 and (Path(args.files[0]) / "contract.json").is_file():
        return args.files.pop(0)
    config_path = Path(args.config or "config.yaml")
    if args.config or config_path.is_file():
        from daemon.config import ConfigError, read_config

        try:
            return read_config(config_path).model
        except ConfigError as error:
            raise InputError(f"--config: {error}") from None
    from models.shipped import DEFAULT_MODEL_DIR

    return str(DEFAULT_MODEL_DIR)


def run(args: argparse.Namespace) -> int:
    """Handler of ``genred classify``; exit status 1 when any file failed."""
    args.model_dir = resolve_model_dir(args)
    if not args.hop_seconds > 0:
        raise InputError("--hop-seconds must be > 0")
    if args.workers < 1:
        raise InputError("--workers must be >= 1")
    return classify_library(args)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``classify`` on an argparse subparsers object."""
    parser = subparsers.add_parser("classify", help="genre of whole songs (slice majority vote)",
                                   description=classify.__doc__.split(":", 1)[1].strip())
    parser.add_argument("files", metavar="FILE", nargs="+",
                        help="audio files, folders (their audio files, recursively) or URLs "
                             "(a first argument that is a model folder is taken as --model)")
    parser.add_argument("--model", metavar="DIR", dest="model_dir",
                        help="model artifact folder (default: the model of --config, else the "
                             "shipped genred-default)")
    parser.add_argument("--config", metavar="FILE",
                        help="take the default model from this config (default: ./config.yaml "
                             "when present)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--hop-seconds", type=float, default=30.0,
                        help="seconds between slice starts (30 = consecutive windows)")
    parser.add_argument("--silence-dbfs", type=float, default=SILENCE_RMS_DBFS,
                        help="slices quieter than this RMS level are silent, not a genre")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: the fastest that agrees, measured once per machine and "
                             "model (as the daemon's, by wall time), e.g. the TFLite export "
                             "on OpenVINO or LiteRT (default: %(default)s)")
    parser.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto",
                        help="compute precision: keras float32/bfloat16/float16 (mixed, see "
                             "bench/README.md), openvino float32/bfloat16, tflite float32; "
                             "auto: measured with --runtime auto, else float32 "
                             "(default: %(default)s)")
    add_library_options(parser)
    parser.set_defaults(handler=run)
    return parser
