"""The ``fervid`` command line: the parser, one-line errors and the entry point.

Each command group has its own module and registers its sub-commands here: ``recognition``
(predict, evaluate), ``analysis`` (analyze), ``training`` (train), ``service`` (up, attach, detach, status) and
``viewers`` (monitor, keys, app). Heavy libraries (TensorFlow, Ray, Qt) are imported inside each
command, so ``fervid --help`` is instant and a command only pays for what it uses. Every user
error, a mistyped flag included, is one line on stderr (``fervid CMD: error: ...``) and exit
status 2; ``--json`` commands print exactly one JSON document on stdout and nothing else.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from fervid.cli import analysis, recognition, service, training, viewers
from fervid.cli.output import EXIT_USER_ERROR, error_line, json_document_mode
from fervid.models.backend_env import INTERACTIVE, SERVING, TRAINING


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line that says where help is, not the usage block
    (2 to 8 lines in which the actual problem was the last)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="fervid", description="Facial expression recognition: still images, "
                           "training, and many camera streams on Ray (fervid COMMAND --help for each command).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # sub-parsers: OneLineParser too
    for group in (recognition, analysis, training, service, viewers):
        group.add_parsers(sub)
    return parser


TENSORFLOW_PURPOSE = {"train": TRAINING, "predict": INTERACTIVE, "evaluate": INTERACTIVE, "app": INTERACTIVE,
                      "analyze": INTERACTIVE, "ensemble": INTERACTIVE}
"""How each command that runs TensorFlow in its own process sets it up (models.backend_env says why);
the others (``up``...) only pass the log level on to the Ray workers they start."""


def main(argv: list[str] | None = None) -> int:
    from fervid.models.backend_env import configure_tensorflow

    args = build_parser().parse_args(argv)
    # Before anything imports Keras; Ray workers started by this process inherit it.
    configure_tensorflow(TENSORFLOW_PURPOSE.get(args.command, SERVING))
    from fervid.errors import FervidError

    try:
        with json_document_mode(getattr(args, "json", False)):
            return int(args.func(args) or 0)
    except FervidError as exc:
        print(error_line(args.command, exc), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"fervid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
