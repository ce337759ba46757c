"""Re-save a model artifact with float16 weight storage (half the size; loads as float32).

Usage: python -m tools.to_float16 SOURCE_DIR TARGET_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from models.artifact import save_artifact
from models.contract import CONTRACT_FILE, parse_contract
from models.loader import load_artifact

_LOGGER = logging.getLogger("to_float16")
_KEEP = (".png", ".json", ".md")


def convert(source: Path, target: Path) -> Path:
    """Load ``source``, write ``target`` with float16 storage, copy figures and metrics."""
    loaded = load_artifact(source)
    contract = parse_contract(json.loads((source / CONTRACT_FILE).read_text()), str(source))
    folder = save_artifact(loaded.model, target, contract, storage="float16")
    for item in source.iterdir():
        if item.suffix in _KEEP and item.name not in (CONTRACT_FILE, "model.json"):
            shutil.copy2(item, folder / item.name)
    return folder


def main() -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    _LOGGER.info("wrote %s", convert(args.source, args.target))


if __name__ == "__main__":
    main()
