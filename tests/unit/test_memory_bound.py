"""Memory per ingested object stays within the bound README states (issue 9): every ingest and read
stage, each in a fresh process as the store runs it, on a 3 MP photo of real dev-set content, plain
and decoded from a JPEG (the codec's JPEG recovery, the heaviest path)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import DEVSET, REPO, needs_devset

pytestmark = [needs_devset]


@pytest.mark.timeout(900)
def test_every_stage_stays_within_the_stated_memory_bound() -> None:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_memory.py"), str(DEVSET), "--sizes", "3",
                          "--kinds", "plain,jpeg", "--check"], capture_output=True, text=True, timeout=880)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "stated bound: peak <= 12 x pixel buffer + 160 MiB: holds for every stage" in out.stdout
    stages = [line for line in out.stdout.splitlines() if line.startswith(("plain ", "jpeg "))]
    assert len(stages) == 12, out.stdout  # 6 stages x 2 kinds, each measured
