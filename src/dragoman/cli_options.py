"""Command-line option types and the parser every ``dragoman`` command uses.

Each option is checked when it is parsed, so a bad value stops the command with ONE line
naming the option and what it accepts (``dragoman serve: argument --port: 70000 is not a
port (1-65535)``) and exit code 2 — never a traceback, never a value silently wrapped
(a port of 70000 would otherwise listen on 70000 mod 65536).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

PORT_MIN, PORT_MAX = 1, 65535
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error; subcommand parsers inherit it (argparse builds
    them with the parent's class)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def fail(message: object) -> int:
    """Report a problem that stops a command (one line on stderr); the exit code, 2."""
    print(f"dragoman: {message}", file=sys.stderr)
    return 2


def port(text: str) -> int:
    value = _int(text)
    if not PORT_MIN <= value <= PORT_MAX:
        raise argparse.ArgumentTypeError(f"{text} is not a port ({PORT_MIN}-{PORT_MAX})")
    return value


def host(text: str) -> str:
    """An address or name to listen on; a URL or a value with spaces is a common slip."""
    if not text or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a host name or address (e.g. 127.0.0.1, 0.0.0.0, ::1)")
    return text


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="warning", type=str.lower, choices=LOG_LEVELS,
                        metavar="LEVEL",
                        help=f"what dragoman logs to stderr: {', '.join(LOG_LEVELS)} "
                             "(default: warning)")
