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
echo "setup done: $(.venv/bin/python -c 'import simfs, sys; print(sys.version.split()[0])') venv at .venv"
