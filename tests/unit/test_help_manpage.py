"""`simfs --help` has argument texts, -o options, exit codes and examples; `simfs man` covers the parser."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_simfs

from simfs.cli import build_parser
from simfs.errors import ExitCode
from simfs.manpage import render
from simfs.options import OURS


def subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_argument_has_a_help_text() -> None:
    for name, sub in subcommands().items():
        for action in sub._actions:
            assert action.help, f"simfs {name}: {action.dest} has no help text"


def test_help_lists_exit_codes_and_examples_and_mount_options() -> None:
    out = run_simfs("--help")
    assert out.returncode == 0
    for code in ExitCode:
        assert f"\n  {int(code):<6} " in out.stdout, code
    assert "examples:" in out.stdout and "simfs mount " in out.stdout
    mount = run_simfs("mount", "--help").stdout
    for key in OURS:
        assert f"\n  {key}" in mount, key
    assert "STORE" in mount and "an existing empty directory" in mount


def test_man_page_lists_every_subcommand_option_and_exit_code(tmp_path: Path) -> None:
    page = render(build_parser())
    assert page.startswith(".TH SIMFS 1 ")
    for name, sub in subcommands().items():
        assert f"\n.SS {name}\n" in page, name
        section = page.split(f"\n.SS {name}\n", 1)[1].split("\n.SS ", 1)[0]
        for action in sub._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert opt.replace("-", "\\-") in section, (name, opt)
    for code in ExitCode:
        assert f".TP\n\\fB{int(code)}\\fR\n" in page, code
    for key in OURS:
        assert f"\\fB{key}" in page, key
    out = run_simfs("man")
    assert out.returncode == 0 and out.stdout.split("\n", 1)[1] == page.split("\n", 1)[1]  # the date aside


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_page_renders_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "simfs.1"
    path.write_text(render(build_parser()))
    out = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True,
                         env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    text = out.stdout
    assert "SIMFS(1)" in text and "EXIT STATUS" in text and "MOUNT OPTIONS" in text
    for name in subcommands():
        assert f"simfs {name}" in text, name
