"""The generator streams: memory stays far below the data size, work is done in chunks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from retailhub.demo import generate, writer

PROBE = """
import json, sys, tracemalloc
from pathlib import Path
import pyarrow as pa
from retailhub.demo import generate
tracemalloc.start()
report = generate(Path(sys.argv[1]), 300_000, seed=2, defect_rate=0.01, chunk_lines=5_000)
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({
    "python_numpy_peak": peak,
    "arrow_peak": pa.default_memory_pool().max_memory(),
    "online_retail_bytes": sum(
        f["bytes"] for f in report.files if f["dataset"] == "online_retail"),
}))
"""


def test_peak_memory_is_a_small_fraction_of_the_data(tmp_path: Path) -> None:
    """NumPy/Python (tracemalloc) and Arrow (its pool) peaks, in a fresh interpreter.

    Holding the whole Online Retail text once would already need 100 % of its size.
    """
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    m = json.loads(out.stdout)
    size = m["online_retail_bytes"]
    assert size > 20_000_000
    assert m["python_numpy_peak"] < 0.4 * size, m
    assert m["arrow_peak"] < 0.3 * size, m


def test_each_file_is_written_in_several_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    original = writer.CsvSink.write_lines

    def spy(self: writer.CsvSink, lines: writer.StrArray) -> None:
        calls[self.path.name] += 1
        original(self, lines)

    monkeypatch.setattr(writer.CsvSink, "write_lines", spy)
    generate(tmp_path, 20_000, seed=4, defect_rate=0.01, chunk_lines=200)
    months = [n for n in calls if n[:4] in ("2024", "2025")]
    assert months and all(calls[n] > 1 for n in months if n.startswith("2025-12"))
    assert calls["Sample - Superstore.csv"] > 1


def test_progress_reports_every_stage_up_to_its_total(tmp_path: Path) -> None:
    events: list[tuple[str, int, int]] = []
    generate(tmp_path, 5000, seed=4, defect_rate=0.01, progress=lambda *e: events.append(e))
    stages = [s for s, _, _ in events]
    assert set(stages) == {"online_retail", "product_catalog", "superstore", "customer_behaviour"}
    for stage in set(stages):
        done = [d for s, d, _ in events if s == stage]
        totals = {t for s, _, t in events if s == stage}
        assert done == sorted(done) and len(totals) == 1
        assert done[-1] == totals.pop()
    assert next(t for s, _, t in events if s == "online_retail") == 5000
