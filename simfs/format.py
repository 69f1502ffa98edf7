"""STORE/FORMAT: the store's on-disk format version and feature flags (JSON), validated at open."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadStore

FORMAT_NAME = "simfs-store"
# The version this code writes for new stores, and the versions it can open. Kept separate on
# purpose: a future reader may accept old versions it no longer writes.
FORMAT_VERSION_WRITTEN = 1
FORMAT_VERSIONS_ACCEPTED = frozenset({1})
# Features this code understands. A store that names a feature not listed here was written by a
# newer simfs and must be refused rather than half-understood.
FEATURES_KNOWN = frozenset({"verbatim-objects", "encoded-objects", "reference-chains", "fitted-predictions",
                            "chunked-files", "jpeg-coefficients", "jpeg-decoders",
                            "palette-colours", "palette-ranks", "subpixel-resampling"})
FEATURES_WRITTEN = ("verbatim-objects",)


@dataclass
class StoreFormat:
    version: int = FORMAT_VERSION_WRITTEN
    features: list[str] = field(default_factory=lambda: list(FEATURES_WRITTEN))
    deflater: str | None = None  # identity of the pinned deflater, once PNG coding is on

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT_NAME,
            "version": self.version,
            "features": sorted(self.features),
            "deflater": self.deflater,
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> StoreFormat:
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise BadStore(f"{where}: FORMAT is not valid JSON ({exc}); the store may be damaged") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise BadStore(f"{where}: not a simfs store (FORMAT does not say {FORMAT_NAME!r})")
        version = doc.get("version")
        if version not in FORMAT_VERSIONS_ACCEPTED:
            raise BadStore(
                f"{where}: store format version {version!r} is not supported by this simfs "
                f"(accepts {sorted(FORMAT_VERSIONS_ACCEPTED)}); upgrade simfs"
            )
        features = doc.get("features") or []
        unknown = sorted(set(features) - FEATURES_KNOWN)
        if unknown:
            raise BadStore(f"{where}: store uses features this simfs does not know: {', '.join(unknown)}; upgrade simfs")
        return cls(version=version, features=list(features), deflater=doc.get("deflater"))


def format_path(store: Path) -> Path:
    return store / "FORMAT"


def read_format(store: Path) -> StoreFormat:
    path = format_path(store)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadStore(f"{store}: not a simfs store (no FORMAT file)") from None
    except OSError as exc:
        raise BadStore(f"{store}: cannot read FORMAT: {exc.strerror}") from exc
    return StoreFormat.from_json(raw, str(store))


def write_format(store: Path, fmt: StoreFormat) -> None:
    """Write FORMAT durably (tmp, fsync, rename, fsync dir)."""
    tmp = store / "FORMAT.tmp"
    with open(tmp, "wb") as fh:
        fh.write(fmt.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, format_path(store))
    fsync_dir(store)


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
