#!/usr/bin/env bash
# Set up (if needed) and run lint, type check and the whole test suite, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check simfs codec tests scripts
.venv/bin/mypy simfs
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -m "not slow" -q -p no:cacheprovider -n 2 "$@"
