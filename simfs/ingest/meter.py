"""What the background ingest did recently: per-step counts, megapixels per second, bytes saved (for `simfs status`)."""

from __future__ import annotations

import struct
import threading
import time
from collections import deque

WINDOW = 60.0  # seconds of history behind the throughput figures
_PNG = b"\x89PNG\r\n\x1a\n"


def png_megapixels(content: bytes) -> float:
    """Image size from a PNG's IHDR (the encoder's input); 0 for anything else."""
    if len(content) >= 24 and content.startswith(_PNG) and content[12:16] == b"IHDR":
        width, height = struct.unpack(">II", content[16:24])
        return width * height / 1e6
    return 0.0


class IngestMeter:
    """Thread-safe counters since mount plus a sliding window of (time, step, megapixels)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: deque[tuple[float, str, float]] = deque()
        self.started = clock()
        self.done: dict[str, int] = {}
        self.saved_bytes = 0  # stored bytes before minus after, over every switch since mount

    def record(self, step: str, megapixels: float = 0.0, saved: int = 0) -> None:
        now = self._clock()
        with self._lock:
            self.done[step] = self.done.get(step, 0) + 1
            self.saved_bytes += saved
            self._events.append((now, step, megapixels))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] < now - WINDOW:
            self._events.popleft()

    def rates(self) -> dict[str, float]:
        """Megapixels per second per step over the last WINDOW seconds (or since mount, if shorter)."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            span = max(1.0, min(WINDOW, now - self.started))
            out: dict[str, float] = {}
            for _, step, mp in self._events:
                out[step] = out.get(step, 0.0) + mp
        return {step: mp / span for step, mp in out.items()}

    def snapshot(self) -> dict[str, object]:
        rates = self.rates()
        with self._lock:
            return {"done": dict(self.done), "saved_bytes": self.saved_bytes,
                    "megapixels_per_s": rates, "window_s": WINDOW,
                    "uptime_s": round(self._clock() - self.started, 1)}
