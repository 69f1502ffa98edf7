"""simfs: a FUSE filesystem for photo collections that stores PNGs relative to similar images."""

import os as _os

# numpy's OpenBLAS threads made the similarity index's small matrix products cost ~5x more CPU
# (measured); the daemon's work is many small operations, so one BLAS thread is right.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from importlib.metadata import PackageNotFoundError as _NotFound
from importlib.metadata import version as _version

try:
    __version__ = _version("simfs")
except _NotFound:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
