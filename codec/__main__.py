"""Entry point for ``python -m codec``."""

import sys

from .cli import main

sys.exit(main())
