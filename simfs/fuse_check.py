"""Dry-run of libfuse's own option parser, so a bad `-o` is a usage error before any store is created."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import tempfile
from typing import Any

# Parsed by fuse_main()'s command-line helper, not by fuse_new(): checked by simfs/options.py instead.
HELPER_OPTIONS = {"max_threads", "max_idle_threads", "clone_fd"}
# mfusepy moves these into libfuse 3's config struct instead of the -o string.
CONFIG_OPTIONS = {"hard_remove", "use_ino", "readdir_ino", "direct_io", "nopath", "intr", "intr_signal"}


_UNKNOWN = re.compile(r"unknown option\(s\): `-o ([^']*)'")
_NAMED = re.compile(r"option `([^']*)'")


class _FuseArgs(ctypes.Structure):
    _fields_ = [("argc", ctypes.c_int), ("argv", ctypes.POINTER(ctypes.c_char_p)), ("allocated", ctypes.c_int)]


def _libfuse() -> Any | None:
    name = ctypes.util.find_library("fuse3")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        new = lib.fuse_new_31  # fuse_new() of libfuse >= 3.1 (the header maps fuse_new to it)
    except (OSError, AttributeError):
        return None
    new.restype = ctypes.c_void_p
    new.argtypes = [ctypes.POINTER(_FuseArgs), ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    lib.fuse_destroy.argtypes = [ctypes.c_void_p]
    return lib


def _option_text(key: str, value: Any) -> str:
    return key if value is True else f"{key}={value}"


def _try(lib: Any, option: str) -> str | None:
    """None if libfuse accepts `-o option`, else what libfuse printed (its stderr is captured)."""
    argv_list = [b"simfs", b"-o", option.encode("utf-8", "surrogateescape")]
    argv = (ctypes.c_char_p * len(argv_list))(*argv_list)
    args = _FuseArgs(len(argv_list), argv, 0)
    ops = ctypes.create_string_buffer(1024)  # no callbacks: fuse_new only parses and allocates
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)  # libfuse writes its complaint to stderr: keep it for our message
        try:
            handle = lib.fuse_new_31(ctypes.byref(args), ops, 0, None)
            if handle:
                lib.fuse_destroy(handle)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    if handle:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "libfuse refused it"


def bad_options(options: dict[str, Any]) -> list[tuple[str, str]]:
    """[(option, what is wrong)] if libfuse would refuse these -o options; [] if fine or it cannot tell.

    All options in one dry run, as the real mount passes them: some only exist once another is given
    (`modules=subdir,subdir=DIR`). libfuse names every unknown one, or the first one it cannot parse.
    """
    lib = _libfuse()
    if lib is None:
        return []  # no libfuse 3 here: the mount itself will fail and say why
    texts = [_option_text(key, value) for key, value in options.items()
             if key not in HELPER_OPTIONS and key not in CONFIG_OPTIONS and value is not False]
    if not texts:
        return []
    problem = _try(lib, ",".join(texts))
    if problem is None:
        return []
    unknown = _UNKNOWN.search(problem)
    if unknown:
        return [(name, "unknown mount option") for name in unknown.group(1).split(",") if name]
    named = _NAMED.search(problem)
    return [(named.group(1) if named else ",".join(texts), problem.removeprefix("fuse: "))]
