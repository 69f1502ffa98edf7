"""`mount.fuse.simfs STORE MNT [-o OPTS]`: the helper mount(8) runs for `-t fuse.simfs` and /etc/fstab lines."""

from __future__ import annotations

import sys

from .errors import ExitCode

USAGE = ("usage: mount.fuse.simfs STORE MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v] [-t fuse.simfs]\n"
         "  (run by mount(8) for `mount -t fuse.simfs STORE MOUNTPOINT` and fstab lines of type fuse.simfs)")

# Options only mount(8), systemd or fstab readers act on; libfuse would reject most of them, and they
# say nothing about the file system itself. `rw` is the default anyway (mount(8) adds it itself).
_FSTAB_ONLY = {"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner",
               "group", "rw"}
_FSTAB_PREFIXES = ("x-", "X-", "comment=")


def filter_options(text: str) -> list[str]:
    """The comma-separated -o list without fstab-only options, in order."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item or item in _FSTAB_ONLY or item.startswith(_FSTAB_PREFIXES):
            continue
        out.append(item)
    return out


def simfs_argv(argv: list[str]) -> tuple[list[str] | None, bool, bool]:
    """mount(8)'s helper arguments → (`simfs mount ...` argv or None on a usage error, fake, verbose).

    mount(8) calls helpers as `mount.TYPE SPEC DIR [-sfnv] [-N NS] [-o OPTS] [-t TYPE.SUBTYPE]`, and
    fuse3's mount.fuse3 (for `-t fuse mount.simfs#STORE`) as `mount.simfs SPEC DIR -o OPTS`.
    """
    positional: list[str] = []
    options: list[str] = []
    fake = verbose = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "-t", "-N"):
            if i + 1 >= len(argv):
                return None, fake, verbose
            if arg == "-o":
                options += filter_options(argv[i + 1])
            elif arg == "-N":
                return None, fake, verbose  # another mount namespace: not supported
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            options += filter_options(arg[2:])
        elif arg.startswith("-") and len(arg) > 1:
            for flag in arg[1:]:
                if flag == "f":
                    fake = True
                elif flag == "v":
                    verbose = True
                elif flag not in "sn":  # sloppy and no-mtab: nothing to do for a FUSE mount
                    return None, fake, verbose
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        return None, fake, verbose
    store, mountpoint = positional
    # `mount -t fuse simfs#STORE` style sources reach us with the prefix when mount(8) runs us directly
    if "#" in store and not store.startswith(("/", ".")):
        store = store.split("#", 1)[1]
    out = ["mount", store, mountpoint]
    if options:
        out += ["-o", ",".join(options)]
    return out, fake, verbose


def main(argv: list[str] | None = None) -> int:
    args, fake, verbose = simfs_argv(sys.argv[1:] if argv is None else argv)
    if args is None:
        print(USAGE, file=sys.stderr)
        return int(ExitCode.USAGE)
    if verbose:
        print("simfs " + " ".join(args), file=sys.stderr)
    if fake:  # mount -f: do everything except the mount itself
        return 0
    from .cli import main as simfs_main

    return simfs_main(args)


if __name__ == "__main__":
    sys.exit(main())
