"""`simfs man`: the simfs(1) manual page in roff, generated from the argparse parser and help_text."""

from __future__ import annotations

import argparse
import datetime

from . import __version__
from .help_text import EXAMPLES, EXIT_CODES, MOUNT_OPTIONS


def _esc(text: str) -> str:
    """Roff-safe text: backslashes and hyphens escaped, no line starting with a control character."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in out.splitlines())


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


def _usage(parser: argparse.ArgumentParser) -> str:
    text = parser.format_usage().strip()
    text = text[len("usage: "):] if text.startswith("usage: ") else text
    return "\n".join(line.strip() for line in text.splitlines())


def _option_lines(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar or action.dest.upper()
                names += " " + (metavar if isinstance(metavar, str) else " ".join(metavar))
        else:
            names = str(action.metavar or action.dest.upper())
        help_text = (action.help or "") % {"default": action.default} if action.help else ""
        lines += [".TP", f"\\fB{_esc(names)}\\fR", _esc(help_text) or "\\&"]
    return lines


def render(parser: argparse.ArgumentParser) -> str:
    """The whole page; every subcommand, every option, every exit code."""
    date = datetime.date.today().isoformat()
    subs = _subcommands(parser)
    out = [f'.TH SIMFS 1 "{date}" "simfs {__version__}" "User Commands"',
           ".SH NAME", "simfs \\- " + _esc(parser.description or "FUSE file system for photo collections"),
           ".SH SYNOPSIS"]
    for sub, _ in subs.values():
        out += [".nf", _esc(_usage(sub)), ".fi", ".PP"]
    out += [".nf", "simfs \\-\\-version | \\-\\-help", ".fi", ".SH DESCRIPTION",
            _esc("A FUSE file system for photo collections: files are stored content-addressed, deduplicated "
                 "and checksummed; reads return exactly the bytes written. In the background every image is "
                 "described and indexed, and every PNG coded byte-exactly against the most similar stored "
                 "image."),
            ".SH OPTIONS"]
    out += _option_lines(parser)
    out += [".SH COMMANDS"]
    for name, (sub, summary) in subs.items():
        out += [f".SS {_esc(name)}", _esc(summary)]
        out += _option_lines(sub)
    out += [".SH MOUNT OPTIONS", _esc("Comma-separated, after -o; options simfs does not know go to libfuse "
                                     "(see mount.fuse3(8)); an option neither knows is a usage error.")]
    for opt, what in MOUNT_OPTIONS:
        out += [".TP", f"\\fB{_esc(opt)}\\fR", _esc(what)]
    out += [".SH EXIT STATUS"]
    for code, what in EXIT_CODES:
        out += [".TP", f"\\fB{_esc(code)}\\fR", _esc(what)]
    out += [".SH EXAMPLES"]
    for cmd, what in EXAMPLES:
        out += [".TP", f"\\fB{_esc(cmd)}\\fR", _esc(what)]
    out += [".SH FILES", ".TP", "\\fISTORE\\fB/simfs.log\\fR", _esc("the mount daemon's log"),
            ".TP", "\\fB/usr/sbin/mount.fuse.simfs\\fR",
            _esc("the mount(8) helper for type fuse.simfs (a link to the installed console script)"),
            ".SH SEE ALSO", "mount(8), fstab(5), mount.fuse3(8), fusermount3(1)"]
    return "\n".join(out) + "\n"
