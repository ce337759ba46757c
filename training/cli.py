"""Training subcommands of the ``genred`` command: dataset build, train, evaluate, classify.

The daemon's CLI calls :func:`add_subcommands`; ``python -m training.cli`` runs them alone.
Every subparser sets ``handler``: ``args.handler(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable

from models.extras import missing_extra_message
from training import evaluate, head, library, train
from training.errors import InputError

Handler = Callable[[argparse.Namespace], int]


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input problems (one line, exit status 2)."""
    from models.audio import AudioDecodeError
    from models.contract import ArtifactError

    errors: list[type[BaseException]] = [InputError, ArtifactError, AudioDecodeError]
    if "models.vgg16" in sys.modules:
        errors.append(sys.modules["models.vgg16"].WeightsUnavailableError)
    return tuple(errors)


def guarded(command: str, handler: Handler) -> Handler:
    """``handler`` with user errors turned into one stderr line and exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ImportError as error:  # a serve-only install running a training command
            hint = missing_extra_message(error, f"genred {command}")
            if hint is None:
                raise
            print(f"genred {command}: error: {hint}", file=sys.stderr)
            return 2
        except Exception as error:
            if not isinstance(error, _user_errors()):
                raise
            print(f"genred {command}: error: {error}", file=sys.stderr)
            return 2

    return run


def dataset_build(args: argparse.Namespace) -> int:
    """Handler of ``genred dataset build``."""
    from training.dataset import build_dataset

    summary = build_dataset(args.audio_dir, args.out_dir, args.workers, args.limit_per_genre,
                            args.cluster)
    print("\n".join(summary.lines()))
    return 0


def _add_dataset(subparsers) -> None:
    """Register ``dataset build``."""
    dataset = subparsers.add_parser("dataset", help="build BFFT slice datasets")
    commands = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)
    build = commands.add_parser("build", help="audio folders per genre -> slice PNGs + manifest")
    build.add_argument("audio_dir", metavar="AUDIO_DIR", help="folder with a folder per genre")
    build.add_argument("out_dir", metavar="OUT_DIR", help="output folder (PNGs, manifest.csv)")
    build.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="parallel processes (default: CPU cores)")
    build.add_argument("--cluster", metavar="tcp://HOST:PORT",
                       help="Dask scheduler to run on (workers need genred and both folders "
                            "at the same paths)")
    build.add_argument("--limit-per-genre", type=int, help="use only the first N files per genre")
    build.set_defaults(handler=guarded("dataset build", dataset_build))


def add_subcommands(subparsers) -> None:
    """Register dataset (build), train, evaluate and classify on argparse ``subparsers``."""
    _add_dataset(subparsers)
    for name, module in (("train", train), ("train-head", head), ("evaluate", evaluate),
                         ("classify", library)):
        parser = module.add_parser(subparsers)
        parser.set_defaults(handler=guarded(name, module.run))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m training.cli COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="genred", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_subcommands(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
