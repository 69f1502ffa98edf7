"""`python -m simfs` runs the simfs command line."""

import sys

from .cli import main

sys.exit(main())
