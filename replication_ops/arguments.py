"""Command-line arguments checked before anything happens: argparse types and a parser whose errors
are one line.

Every flag of ``ddb-replication`` and ``python -m replication_ops.local`` goes through one of the
``type=`` functions here, so a bad value is refused by argparse (exit 2, one line naming the flag,
the value and what is allowed) before any AWS call, file write or process start. Numbers must be
finite: ``float("nan")`` and ``float("inf")`` parse, but compare false with every bound, which once
let ``--adoption-wait nan`` through to a crash after a new key had been created and stored.

The parser prints ``PROG: error: MESSAGE (see `PROG --help`)`` instead of argparse's usage block,
says which subcommand an unknown flag was given to (argparse reports it against the top-level
parser), suggests the nearest flag it knows or the subcommand that has it, and takes a value that
looks like a negative number (``--segments -inf``, ``--rate -1e3``) as the flag's value, so its
type says what is wrong with it (argparse alone takes only ``-5`` and ``-.5`` as numbers and calls
the rest a missing value).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import math
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from replication.limits import MAX_ATTRIBUTE_NAME_BYTES
from replication.settings import TABLE_NAME_PATTERN
from replication_ops import certificates
from replication_ops.errors import ConfigError

# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html: TotalSegments is
# 1 to 1,000,000; each segment is scanned by a thread of its own here, hence a lower bound of ours.
MAX_SCAN_SEGMENTS = 1000
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html:
# VisibilityTimeout is 0 to 43,200 seconds (12 hours).
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
# Region codes as AWS spells them (cn-north-1, us-east-1, us-gov-west-1, ap-southeast-3).
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# Profile names: what ~/.aws/config accepts in a [profile NAME] header (no spaces, no brackets).
PROFILE_PATTERN = re.compile(r"^[A-Za-z0-9_.@+=,:/-]+$")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) reported by the subcommand that was given the flag.
    Flags are never abbreviated (``verify --rep`` must not mean ``--repair``, which writes): a typo
    gets the "did you mean" line instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self.chosen_subparser(parsed) or self
            parser.error(unrecognized(extras, parser, self.subparsers()))
        return parsed

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's, with ``--flag -1e9`` read as ``--flag=-1e9`` (the subcommands' parsers are of
        this class too, so this applies to every flag of every subcommand)."""
        return super().parse_known_args(self._join_negative_values(args), namespace)

    def _join_negative_values(self, args: Sequence[str] | None) -> list[str]:
        if args is None:
            args = sys.argv[1:]  # what argparse reads when given nothing
        joined: list[str] = []
        tokens = list(args)
        index = 0
        while index < len(tokens):
            token = tokens[index]
            action = self._option_string_actions.get(token)
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if token == "--":
                joined.extend(tokens[index:])
                break
            if (
                action is not None
                and action.nargs is None
                and following is not None
                and following.startswith("-")
                and following not in self._option_string_actions
                and _looks_numeric(following)
            ):
                joined.append(f"{token}={following}")
                index += 2
                continue
            joined.append(token)
            index += 1
        return joined

    def subparsers(self) -> dict[str, tuple[argparse.ArgumentParser, str]]:
        """The listed subcommands (not hidden ones) by name: their parser and one-line summary."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
                return {
                    name: (parser, summaries[name])
                    for name, parser in action.choices.items()
                    if isinstance(parser, argparse.ArgumentParser) and name in summaries
                }
        return {}

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A mistyped subcommand lists the listed subcommands only (not hidden ones such as the
        local environment's ``_serve``) and the nearest one."""
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            listed = [choice.dest for choice in action._choices_actions]
            close = difflib.get_close_matches(str(value), listed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r} (choose from {', '.join(map(repr, listed))}{hint})"
            )
        super()._check_value(action, value)

    def chosen_subparser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser | None:
        """The deepest subcommand given (``ca issue``'s parser for ``ca issue ...``), or None."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(parsed, action.dest or "", None)
                parser = action.choices.get(chosen) if chosen else None
                if not isinstance(parser, argparse.ArgumentParser):
                    return None
                deeper = parser.chosen_subparser(parsed) if isinstance(parser, ArgumentParser) else None
                return deeper or parser
        return None


def _looks_numeric(text: str) -> bool:
    """``-inf``, ``-nan``, ``-1e9``, ``-1_000``: text Python reads as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


def unrecognized(
    extras: list[str],
    parser: argparse.ArgumentParser,
    commands: dict[str, tuple[argparse.ArgumentParser, str]] | None = None,
) -> str:
    """``unrecognized argument --repiar (did you mean --repair?)``; a flag of another subcommand
    (``credentials --adoption-wait``) names the subcommand that has it, and a subcommand given as an
    argument (``credentials rotate``) says to give it first."""
    commands = commands or {}
    first = extras[0]
    message = f"unrecognized argument{'s' if len(extras) > 1 else ''} {' '.join(extras)}"
    flag = first.split("=", 1)[0]
    prog = parser.prog.rsplit(" ", 1)[0] if commands and parser.prog.count(" ") else parser.prog
    if first.startswith("-"):
        owners = [
            name
            for name, (command, _) in commands.items()
            if command is not parser and flag in _options(command)
        ]
        if owners:
            use = " or ".join(f"`{prog} {name}`" for name in owners)
            summary = f" ({commands[owners[0]][1]})" if len(owners) == 1 and commands[owners[0]][1] else ""
            return f"{message}: {flag} is a flag of another command: use {use}{summary}"
        close = difflib.get_close_matches(flag, _options(parser), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]}?)"
    elif first in commands:
        message += f": {first} is a command of its own (use `{prog} {first} ...`)"
    return message


# -- numbers -----------------------------------------------------------------------------------


def _show(value: float) -> str:
    """1000000 -> 1,000,000; 0.01 -> 0.01."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def number(low: float, high: float, *, low_open: bool = False, what: str = "") -> Callable[[str], float]:
    """A finite number within [low, high] (or (low, high] with ``low_open``)."""

    def parse(text: str) -> float:
        value = _number(text)
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            bound = f"more than {_show(low)}" if low_open else f"at least {_show(low)}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound} and at most {_show(high)}{what}")
        return value

    parse.__name__ = "number"
    return parse


def seconds(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite duration in seconds within [low, high] (or (low, high] with ``low_open``)."""
    return number(low, high, low_open=low_open, what=" seconds")


def _nonzero(text: str) -> bool:
    """``text`` names a number other than zero, even one a float rounds to 0 (``1e-400``)."""
    try:
        return Decimal(text.strip()) != 0
    except InvalidOperation:
        return False


def rate(high: float) -> Callable[[str], float]:
    """Items per second: 0 (no limit) or from 0.01 to ``high``. A tiny positive rate (1e-300) is
    refused: it means one item every 1e300 seconds, which no sleep can wait."""

    def parse(text: str) -> float:
        value = _number(text)
        if (value != 0 or _nonzero(text)) and not 0.01 <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r}: give 0 for no limit, or from 0.01 to {_show(high)} items per second"
            )
        return value

    parse.__name__ = "rate"
    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number within [low, high]."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: must be from {low:,} to {high:,}")
        return value

    parse.__name__ = "whole"
    return parse


def port(text: str) -> int:
    """A TCP port on 127.0.0.1; 0 means any free port."""
    value = _whole(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0 (any free port) to 65535")
    return value


# -- text --------------------------------------------------------------------------------------


def url(text: str) -> str:
    """An endpoint URL: ``http(s)://host[:port][/path]``."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an endpoint URL: give http(s)://HOST[:PORT], e.g. http://127.0.0.1:19001"
        )
    return text


HOST_PORT_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def host_port(text: str) -> str:
    """``HOST[:PORT]`` without a scheme, as the module's ``peer_rolesanywhere_endpoint`` takes it
    (IAM Roles Anywhere's CreateSession is always called over HTTPS)."""
    if not HOST_PORT_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST[:PORT]: give e.g. rolesanywhere.us-east-1.amazonaws.com or "
            "localhost:19443, without https://"
        )
    port = text.rpartition(":")[2] if ":" in text else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 1 to 65535")
    return text


def region(text: str) -> str:
    """An AWS region code such as ``cn-north-1`` or ``us-east-1``."""
    if not REGION_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS region code (e.g. cn-north-1, us-east-1)")
    return text


def profile(text: str) -> str:
    """An AWS profile name from ~/.aws/config (whether it exists is checked when it is used)."""
    if not PROFILE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a profile name (see `aws configure list-profiles`)"
        )
    return text


def attribute_name(text: str) -> str:
    """A DynamoDB attribute name: at least one character and less than 64 KB in UTF-8
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html)."""
    size = len(text.encode("utf-8"))
    if not 1 <= size <= MAX_ATTRIBUTE_NAME_BYTES:
        raise argparse.ArgumentTypeError(
            f"an attribute name is 1 to {MAX_ATTRIBUTE_NAME_BYTES:,} bytes of UTF-8, not {size:,}"
        )
    return text


def logical_table(text: str) -> str:
    """A logical table name as the table map takes it (``--table``): 1 to 64 of DynamoDB's table-name
    characters (the engine's ``TABLE_NAME_PATTERN``; whether a side serves it is checked when the
    outputs are read)."""
    if not TABLE_NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a logical table name: 1 to 64 of a-z, A-Z, 0-9, '_', '-' and '.'"
        )
    return text


def name(max_length: int, what: str) -> Callable[[str], str]:
    """Printable text without spaces, 1 to ``max_length`` characters (an alarm name prefix, say)."""

    def parse(text: str) -> str:
        if not text or len(text) > max_length or not text.isprintable() or " " in text:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {what}: 1 to {max_length} printable characters, no spaces"
            )
        return text

    parse.__name__ = "name"
    return parse


def forwarder_certificate_name(text: str) -> str:
    """A forwarder's certificate subject CN, ``NAME.forwarder.REGION`` (the pair's contract: the
    peer-writer role trusts exactly this; ``replication_ops.certificates.forwarder_common_name``)."""
    try:
        return certificates.check_forwarder_common_name(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def serial_number(text: str) -> int:
    """A certificate serial number in hex, as ``ca issue`` and ``openssl x509 -serial`` print it."""
    try:
        return certificates.parse_serial(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# -- paths -------------------------------------------------------------------------------------


def _path_text(text: str, what: str) -> str:
    """A path as given, refused when empty; ``~`` expanded as the shell would have (it does not
    after ``=``: ``--checkpoint=~/b.json`` would otherwise make a folder named ``~``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is an empty path: give {what} (is the shell variable in it set?)"
        )
    return os.path.expanduser(text)


def _kind(mode: int) -> str:
    """What a file that is not a regular file is (for ``/dev/null``: a character device)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def existing_file(hint: str = "") -> Callable[[str], str]:
    """A regular file that exists and is not empty, or a pipe (``--cn-outputs <(terraform output
    -json)``); ``hint`` says where the file comes from, for the message when it is not there."""

    def parse(text: str) -> str:
        text = _path_text(text, "a file")
        try:
            mode = os.stat(text).st_mode
        except FileNotFoundError:
            raise argparse.ArgumentTypeError(f"{text}: no such file{hint}") from None
        except NotADirectoryError:
            raise argparse.ArgumentTypeError(f"{text}: a part of that path is a file, not a folder") from None
        except OSError as error:
            raise argparse.ArgumentTypeError(f"{text}: cannot read it ({error.strerror})") from None
        if stat.S_ISFIFO(mode):
            return text
        if not stat.S_ISREG(mode):
            kind = _kind(mode)
            raise argparse.ArgumentTypeError(f"{text} is {kind}, not a file{hint}")
        if os.stat(text).st_size == 0:
            raise argparse.ArgumentTypeError(f"{text} is empty{hint}")
        return text

    parse.__name__ = "existing_file"
    return parse


def existing_folder(hint: str = "") -> Callable[[str], str]:
    """A folder that exists."""

    def parse(text: str) -> str:
        text = _path_text(text, "a folder")
        path = Path(text)
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, not a folder{hint}")
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: no such folder{hint}")
        return text

    parse.__name__ = "existing_folder"
    return parse


def folder(text: str) -> Path:
    """A folder to read from that may not exist yet: a path that is not a file (what is in it, or
    that it is missing, is then said by the command that reads it)."""
    text = _path_text(text, "a folder")
    path = Path(text)
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else _kind(path.stat().st_mode)
        raise argparse.ArgumentTypeError(f"{text} is {kind}, not a folder")
    return path


def writable_file(text: str) -> Path:
    """A file to write by atomic replacement (a temporary file beside it, then ``os.replace``): a
    regular file or no file yet, in a folder that exists or can be made, where a file can be created.
    That is tried, not inferred from permission bits (root passes ``os.access`` for /proc, where
    nothing can be created, and read-only mounts): a temporary file is created in the nearest folder
    that exists and removed at once."""
    text = _path_text(text, "a file name")
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name")
    if path.exists() and not path.is_file():
        # os.replace would put a regular file in place of /dev/null
        raise argparse.ArgumentTypeError(f"{text} is {_kind(path.stat().st_mode)}: give a file name")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            _can_create_in(text, parent)
            break
    return path


# Why creating a file in an existing folder failed, in words (the OS's own text misleads: /proc answers
# "No such file or directory" for a folder that exists).
_CANNOT_CREATE = {
    errno.EACCES: "you may not write there",
    errno.EPERM: "you may not write there",
    errno.EROFS: "it is on a read-only file system",
    errno.ENOENT: "it is on a virtual file system, such as /proc or /sys",
    errno.EOPNOTSUPP: "its file system does not hold ordinary files",
}


def _can_create_in(text: str, folder: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = _CANNOT_CREATE.get(error.errno or 0, error.strerror or "the system refused")
        raise argparse.ArgumentTypeError(
            f"{text}: no file can be created in {folder}: {reason}; give a path in a folder you can write"
        ) from None


def writable_folder(text: str) -> Path:
    """A folder to write into: a folder, or a path where one can be made (tried as for
    ``writable_file``)."""
    text = _path_text(text, "a folder")
    path = Path(text)
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {candidate} is a file, not a folder")
            _can_create_in(text, candidate)
            break
    return path
