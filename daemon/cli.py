"""The `genred` command: run the daemon, list devices, and the training subcommands."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path

from daemon.config import Config, ConfigError, parse_config, read_config
from daemon.history_cli import add_history
from daemon.lograte import RepeatLimiter
from daemon.redact import RedactingFormatter, redact
from daemon.sources import source_from_spec
from daemon.sources.demo import apply_demo_fallback
from models.errors import GenredError

EXIT_BAD_CONFIG = 2


def configure_logging(level: str) -> None:
    """Log to stderr with timestamps and levels."""
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:  # credentials in URLs never reach the log
        handler.setFormatter(RedactingFormatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler.addFilter(RepeatLimiter())  # nor does a fault repeating 1000 times a second
    for noisy in ("websockets", "absl", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the streaming daemon")
    run.add_argument("--config", help="YAML config (default: ./config.yaml; without one, "
                                      "--source runs on the built-in defaults)")
    run.add_argument("--model", help="model artifact folder (overrides config)")
    run.add_argument("--host", help="bind address (overrides config)")
    run.add_argument("--port", type=int, help="bind port (overrides config; 0 = any free)")
    run.add_argument("--token", help="client token (overrides config / GENRED_TOKEN)")
    run.add_argument(
        "--source", action="append", default=[], metavar="SPEC",
        help="replace the config's sources (repeatable): a file path or URL; "
             "'device:' or 'device:NAME'; 'stdin:RATE[:CHANNELS[:s16le|f32le]]'; "
             "'tcp:PORT[:RATE[:CHANNELS[:FORMAT]]]'; 'demo:' (the bundled demo playlist); "
             "'monitor:' or 'monitor:SINK' (what this machine plays)")
    run.add_argument("--mqtt", metavar="URL",
                     help="publish to this MQTT broker, mqtt://[user:pass@]host[:port] or "
                          "mqtts://... (overrides config mqtt.url)")
    run.add_argument("--loop", action="store_true", help="--source files restart at the end")
    run.add_argument("--no-realtime", action="store_true",
                     help="--source files are read as fast as the pipeline allows")
    run.add_argument("--quiet", action="store_true",
                     help="no line on stdout per genre change / silent / no music per source")
    run.add_argument("--debug", action="store_true", help="debug logging")
    run.set_defaults(handler=_run_command)


def _add_devices(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list sound inputs and output monitors")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(handler=_devices_command)


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export an artifact's model to a lighter CPU runtime (TFLite)",
        description="Write MODEL_DIR/model.tflite and note it in contract.json. The daemon and "
                    "genred classify then use it by default (runtime auto: LiteRT or OpenVINO, "
                    "no TensorFlow import; 'inference: {runtime: tflite}' forces it, 'keras' "
                    "avoids it). Needs the Keras extra: pip install 'genred[keras]'.")
    export.add_argument("model_dir", metavar="MODEL_DIR", help="model artifact folder")
    export.add_argument("--format", choices=("tflite",), default="tflite",
                        help="runtime format (default: %(default)s)")
    export.add_argument("--quantize", choices=("none", "float16", "int8"), default="none",
                        help="none (fp32), float16 weights, or int8 dynamic-range "
                             "(default: %(default)s)")
    export.add_argument("--force", action="store_true",
                        help="replace an existing model.tflite (refused without it)")
    export.set_defaults(handler=_export_command)


def _export_command(args: argparse.Namespace) -> int:
    configure_logging("info")
    from models.contract import ArtifactError
    from models.export import export_tflite
    from models.extras import missing_extra_message

    try:
        path = export_tflite(args.model_dir, quantize=args.quantize, overwrite=args.force)
    except ArtifactError as error:
        print(f"genred export: error: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except ImportError as error:
        hint = missing_extra_message(error, "genred export")
        if hint is None:
            raise
        print(f"genred export: error: {hint}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every genred subcommand."""
    parser = argparse.ArgumentParser(prog="genred", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run(subparsers)
    _add_devices(subparsers)
    _add_export(subparsers)
    add_history(subparsers)
    from training.cli import add_subcommands

    add_subcommands(subparsers)
    return parser


DEFAULT_CONFIG = Path("config.yaml")


def _read_run_config(args: argparse.Namespace) -> Config:
    """--config, else ./config.yaml, else (with --source) the built-in defaults."""
    if args.config:
        try:
            return read_config(args.config)
        except ConfigError as error:
            raise ConfigError(f"--config {error}") from None
    if DEFAULT_CONFIG.is_file():
        return read_config(DEFAULT_CONFIG)
    if not args.source:
        raise ConfigError(f"no config.yaml in {Path.cwd()}: pass --config FILE (e.g. the "
                          f"project's config.yaml), or --source SPEC to listen with the "
                          f"built-in defaults")
    logging.getLogger(__name__).info("no config.yaml here: built-in defaults (model %s)",
                                     Config().model)
    return parse_config({})


def resolve_config(args: argparse.Namespace) -> Config:
    """Read the config file, apply command-line overrides, validate once."""
    config = _read_run_config(args)
    server = config.server
    server = dataclasses.replace(
        server, host=args.host or server.host,
        port=server.port if args.port is None else args.port,
        token=args.token or server.token)
    config = dataclasses.replace(config, server=server)
    if args.source:
        options = {"loop": args.loop, "no_realtime": args.no_realtime}
        config = dataclasses.replace(config, sources=[
            source_from_spec(spec, f"source{i + 1}", options)
            for i, spec in enumerate(args.source)])
    else:  # only the config file's device sources may say `fallback: demo`
        config = dataclasses.replace(config, sources=apply_demo_fallback(config.sources))
    if args.mqtt:
        config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, url=args.mqtt))
    if args.model:
        config = dataclasses.replace(config, model=str(Path(args.model).resolve()))
    if args.debug:
        config = dataclasses.replace(config, log_level="debug")
    config.validate()
    return config


def _run_command(args: argparse.Namespace) -> int:
    configure_logging("debug" if args.debug else "info")
    from daemon.malloc_arenas import limit_malloc_arenas
    from daemon.runner import StartupError, run_daemon

    limit_malloc_arenas()  # before any thread starts

    try:
        config = resolve_config(args)
    except ConfigError as error:
        print(f"genred: config error: {redact(str(error))}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(config.log_level)
    from daemon.runner import StoppedDuringLoad

    try:
        return asyncio.run(run_daemon(config, install_signal_handlers,
                                      terminal=not args.quiet))
    except StartupError as error:
        print(f"genred: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except StoppedDuringLoad:  # nothing to clean up; the loading thread cannot be joined
        logging.getLogger(__name__).info("stopped while loading the model")
        logging.shutdown()
        os._exit(0)
    except KeyboardInterrupt:  # a SIGINT after the event loop closed: already stopped
        return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Each starts a clean shutdown (exit status 0); repeats are ignored from then on."""


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT, SIGTERM and SIGHUP set ``stop``; the first one makes the process ignore them.

    Ignoring (not the event loop's handlers, which asyncio resets when the loop closes)
    keeps a second Ctrl-C from turning the bounded clean shutdown into a KeyboardInterrupt.
    """
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        logging.getLogger(__name__).info("%s: stopping (further stop signals are ignored)",
                                         signum.name)
        for other in STOP_SIGNALS:
            loop.remove_signal_handler(other)
            signal.signal(other, signal.SIG_IGN)
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)


def _devices_command(args: argparse.Namespace) -> int:
    from daemon.sources import list_input_devices, list_monitors

    devices, monitors = list_input_devices(), list_monitors()
    if args.json:
        print(json.dumps({"inputs": devices, "monitors": monitors}, indent=2))
        return 0
    print("inputs (--source device:NAME):")
    if not devices:
        print("  none found (is PortAudio installed and a sound server running?)")
    for device in devices:
        print(f"{device['index']:>3}  {device['name']}  ({device['max_input_channels']} ch, "
              f"{device['default_samplerate']:.0f} Hz, {device['hostapi']})")
    print("monitors of outputs: what this machine plays (--source monitor: for the default "
          "output, or monitor:NAME):")
    for name in monitors or ["  none found (needs PulseAudio or PipeWire, and pactl)"]:
        print(f"     {name}" if monitors else name)
    return 0


def tensorflow_log_defaults() -> None:
    """Before TensorFlow's first import: its C++ INFO lines off unless the user set a level.

    Warnings and errors still show. The CUDA probe's lines ("Could not find cuda drivers",
    "failed call to cuInit") are gone at the cause instead: Linux x86_64 installs the
    tensorflow-cpu wheel (pyproject.toml; scripts/dev installs the CUDA build where an NVIDIA
    driver is loaded).
    """
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `genred` console script."""
    tensorflow_log_defaults()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except GenredError as error:  # bad input of any kind that no handler caught: one line
        logging.getLogger("genred").error("%s", redact(str(error)))
        return 2


if __name__ == "__main__":
    sys.exit(main())
