#!/usr/bin/env bash
# Set up a fresh machine: fuse3 + rsync from apt, a venv in .venv, and simfs with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! command -v fusermount3 >/dev/null || ! command -v rsync >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fuse3 rsync >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
if [ "${1:-}" = "--mount-helper" ]; then  # mount -t fuse.simfs and fstab lines (README: mount(8), fstab, systemd)
  for name in mount.fuse.simfs mount.simfs; do $SUDO ln -sfn "$PWD/.venv/bin/$name" /usr/sbin/$name; done
  echo "linked /usr/sbin/mount.fuse.simfs and /usr/sbin/mount.simfs to $PWD/.venv/bin"
fi
echo "setup done: $(.venv/bin/python -c 'import simfs, sys; print(sys.version.split()[0])') venv at .venv"
