"""The ``auxir`` command: each subcommand is a thin module in this package with ``add_parser``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> module; each module defines add_parser(subparsers) which sets ``func`` on its parser.
COMMANDS: dict[str, str] = {
    "index": "auxir.cli.index",
    "retrieve": "auxir.cli.retrieve",
    "encode": "auxir.cli.encode",
    "evaluate": "auxir.cli.evaluate",
    "compare": "auxir.cli.compare",
    "fuse": "auxir.cli.fuse",
    "folds": "auxir.cli.folds",
    "train": "auxir.cli.train",
    "rerank": "auxir.cli.rerank",
    "demo": "auxir.cli.demo",
    "tune": "auxir.cli.tune",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auxir", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as error:
        # Errors at the boundary already say file, line and what was wrong: print them, not a traceback.
        if args.verbose:
            raise
        print(f"auxir {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
