"""The `genred` command: run the daemon, list devices, and the training subcommands."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path

from daemon.config import Config, ConfigError, SourceConfig, config_from_dict, load_config

_LOGGER = logging.getLogger("genred")
EXIT_BAD_CONFIG = 2


def configure_logging(level: str) -> None:
    """Log to stderr with timestamps and levels."""
    logging.basicConfig(
        level=getattr(logging, level.upper()), stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("websockets", "absl", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the streaming daemon")
    run.add_argument("--config", default="config.yaml", help="YAML config (default: %(default)s)")
    run.add_argument("--model", help="model artifact folder (overrides config)")
    run.add_argument("--host", help="bind address (overrides config)")
    run.add_argument("--port", type=int, help="bind port (overrides config; 0 = any free)")
    run.add_argument("--token", help="client token (overrides config / GENRED_TOKEN)")
    run.add_argument(
        "--source", action="append", default=[], metavar="SPEC",
        help="replace the config's sources (repeatable): a file path or URL; "
             "'device:' or 'device:NAME'; 'stdin:RATE[:CHANNELS[:s16le|f32le]]'; "
             "'tcp:PORT[:RATE[:CHANNELS[:FORMAT]]]'")
    run.add_argument("--loop", action="store_true", help="--source files restart at the end")
    run.add_argument("--no-realtime", action="store_true",
                     help="--source files are read as fast as the pipeline allows")
    run.add_argument("--debug", action="store_true", help="debug logging")
    run.set_defaults(handler=_run_command)


def _add_devices(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list sound input devices")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(handler=_devices_command)


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export an artifact's model to a lighter CPU runtime (TFLite)",
        description="Write MODEL_DIR/model.tflite and note it in contract.json; the daemon uses "
                    "it with config.yaml 'inference: {runtime: tflite}'.")
    export.add_argument("model_dir", metavar="MODEL_DIR", help="model artifact folder")
    export.add_argument("--format", choices=("tflite",), default="tflite",
                        help="runtime format (default: %(default)s)")
    export.add_argument("--quantize", choices=("none", "float16", "int8"), default="none",
                        help="none (fp32), float16 weights, or int8 dynamic-range "
                             "(default: %(default)s)")
    export.set_defaults(handler=_export_command)


def _export_command(args: argparse.Namespace) -> int:
    configure_logging("info")
    from models.contract import ArtifactError
    from models.export import export_tflite

    try:
        path = export_tflite(args.model_dir, quantize=args.quantize)
    except ArtifactError as error:
        print(f"genred export: error: {error}", file=sys.stderr)
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
    from training.cli import add_subcommands

    add_subcommands(subparsers)
    return parser


def _source_from_spec(spec: str, index: int, args: argparse.Namespace) -> SourceConfig:
    """Turn a --source SPEC into a SourceConfig."""
    name = f"source{index + 1}"
    kind, _, rest = spec.partition(":")
    parts = [p for p in rest.split(":") if p] if rest else []
    if kind == "device" and "//" not in rest:
        device: str | int | None = parts[0] if parts else None
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return SourceConfig(name=name, kind="device", device=device)
    if kind in ("stdin", "tcp") and "//" not in rest:
        return _pcm_source(name, kind, parts)
    return SourceConfig(name=name, kind="url", url=spec, loop=args.loop,
                        realtime=not args.no_realtime)


def _pcm_source(name: str, kind: str, parts: list[str]) -> SourceConfig:
    """stdin:RATE[:CHANNELS[:FORMAT]] or tcp:PORT[:RATE[:CHANNELS[:FORMAT]]]."""
    try:
        port = int(parts.pop(0)) if kind == "tcp" else 0
        rate = int(parts[0]) if parts else 44100
        channels = int(parts[1]) if len(parts) > 1 else 1
    except (ValueError, IndexError):
        raise ConfigError(f"--source {kind}: expected numbers, got {':'.join(parts)!r}") \
            from None
    pcm_format = parts[2] if len(parts) > 2 else "s16le"
    if pcm_format not in ("s16le", "f32le"):
        raise ConfigError(f"--source {kind}: format must be s16le or f32le, got {pcm_format!r}")
    return SourceConfig(name=name, kind=kind, port=port, sample_rate_hz=rate,
                        channels=channels, pcm_format=pcm_format)  # type: ignore[arg-type]


def resolve_config(args: argparse.Namespace) -> Config:
    """Load the config file and apply command-line overrides."""
    config = load_config(args.config)
    server = config.server
    server = dataclasses.replace(
        server, host=args.host or server.host,
        port=server.port if args.port is None else args.port,
        token=args.token or server.token)
    sources = config.sources
    if args.source:
        sources = [_source_from_spec(spec, i, args) for i, spec in enumerate(args.source)]
    data = dataclasses.asdict(dataclasses.replace(config, server=server, sources=sources))
    if args.model:
        data["model"] = str(Path(args.model).resolve())
    if args.debug:
        data["log_level"] = "debug"
    return config_from_dict(data)


def _run_command(args: argparse.Namespace) -> int:
    configure_logging("debug" if args.debug else "info")
    from daemon.runner import StartupError, run_daemon

    try:
        config = resolve_config(args)
    except ConfigError as error:
        print(f"genred: config error: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(config.log_level)
    try:
        return asyncio.run(run_daemon(config, _install_signal_handlers))
    except StartupError as error:
        print(f"genred: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG


def _install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop``."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def _devices_command(args: argparse.Namespace) -> int:
    from daemon.sources import list_input_devices

    devices = list_input_devices()
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no input devices found (is PortAudio installed and a sound server running?)")
        return 0
    for device in devices:
        print(f"{device['index']:>3}  {device['name']}  ({device['max_input_channels']} ch, "
              f"{device['default_samplerate']:.0f} Hz, {device['hostapi']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `genred` console script."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
