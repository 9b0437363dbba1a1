"""The ``auxir`` command: each subcommand is a thin module in this package with ``add_parser``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib import metadata

# name -> module; each module defines add_parser(subparsers) which sets ``func`` on its parser.
COMMANDS: dict[str, str] = {
    "index": "auxir.cli.index",
    "retrieve": "auxir.cli.retrieve",
    "encode": "auxir.cli.encode",
    "evaluate": "auxir.cli.evaluate",
    "compare": "auxir.cli.compare",
    "plot": "auxir.cli.plot",
    "fuse": "auxir.cli.fuse",
    "folds": "auxir.cli.folds",
    "train": "auxir.cli.train",
    "rerank": "auxir.cli.rerank",
    "demo": "auxir.cli.demo",
    "tune": "auxir.cli.tune",
    "cv": "auxir.cli.cv",
    "generate-queries": "auxir.cli.generate_queries",
    "explain": "auxir.cli.explain",
}


def package_version() -> str:
    """The installed distribution's version; ``auxir.__version__`` when running from a source tree."""
    try:
        return metadata.version("auxir")
    except metadata.PackageNotFoundError:
        from auxir import __version__

        return __version__


def configure_logging(verbose: bool) -> None:
    """auxir logs INFO (DEBUG with ``-v``); other libraries log WARNING and above only, even with ``-v``.

    Levels are set on the loggers rather than through ``basicConfig`` alone, which does nothing once the root
    logger has a handler (under pytest, or when auxir is embedded), so third-party DEBUG would then leak.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("auxir").setLevel(logging.DEBUG if verbose else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auxir", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log auxir's debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
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
