"""When the daemon backs up the catalog: every so often while mounted, and once at a clean unmount."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .backups import make_backup
from .catalog.db import CatalogDamaged
from .storage import OpenStore

log = logging.getLogger("simfs.backups")


class BackupSchedule:
    """Periodic backups on a daemon thread plus the final one; keep=0 makes none (existing ones stay)."""

    def __init__(self, opened: OpenStore, lock: contextlib.AbstractContextManager[Any], *, keep: int,
                 interval: float, reserve: Callable[[], int] = lambda: 0):
        self.opened = opened
        # the space kept for catalog writes (Vfs.data_reserve: the reserve, plus a released ballast's
        # size): a backup never uses it
        self.reserve = reserve
        self.lock = lock  # the VFS lock: a checkpoint then falls between two operations, never inside one
        self.keep = keep
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def make(self, reason: str) -> None:
        catalog_dir = self.opened.catalog.path
        needed = sum(e.stat().st_size for e in os.scandir(catalog_dir) if e.is_file())  # at most all copied
        st = os.statvfs(self.opened.path)
        if st.f_bavail * st.f_frsize - needed < self.reserve():
            log.warning("catalog backup (%s) skipped: the disk is nearly full (%d bytes needed)", reason, needed)
            return
        try:
            make_backup(self.opened.catalog, self.opened.path, reason=reason, keep=self.keep, lock=self.lock,
                        store_format=self.opened.format.to_json())
        except CatalogDamaged as exc:
            log.error("catalog backup (%s) not made, the catalog is damaged; the existing backups are kept: %s",
                      reason, exc)

    def start(self) -> None:
        if self.keep > 0:
            self._thread = threading.Thread(target=self._loop, name="simfs-backup", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.make("periodic")
            except Exception:  # e.g. ENOSPC: the mount goes on, the next round tries again
                log.exception("periodic catalog backup failed")

    def finish(self, *, clean: bool) -> None:
        """Stop the timer (waiting for a backup in progress), then make the unmount backup."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.keep > 0 and clean:
            try:
                self.make("unmount")
            except Exception:  # the unmount itself succeeded; the earlier backups stay
                log.exception("catalog backup at unmount failed")
