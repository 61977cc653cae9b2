"""Demo data generator: four consistent retail datasets in their real public layouts.

``generate(out_dir, rows, seed, defect_rate)`` writes::

    online_retail/YYYY-MM.csv                UCI Online Retail layout (``rows`` lines + duplicates)
    superstore/Sample - Superstore.csv       Tableau layout, max(200, rows // 20) lines
    product_catalog/products.csv             every product of both sales systems
    customer_behaviour/YYYY-MM.csv           per customer, day and channel, rows // 5 lines
    customer_behaviour/stale-YYYY-MM.csv     only if defect_rate > 0 (old mtime)
    defects.json                             ground truth of every injected defect

Output bytes depend only on ``(rows, seed, defect_rate)``: the period is fixed (two years
ending 2025-12-31) and no clock value is written. The large datasets are generated and
written in chunks (``chunk_lines``), so memory does not grow with ``rows`` beyond the small
order plan. See :mod:`retailhub.demo.defects` for the defect kinds and count formula.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retailhub.demo import behaviour, catalog, online_retail, superstore
from retailhub.demo.defects import (
    CUSTOMER_BEHAVIOUR,
    ONLINE_RETAIL,
    ONLINE_RETAIL_KINDS,
    PRODUCT_CATALOG,
    SUPERSTORE,
    DefectLog,
    defect_count,
    write_defects_json,
)
from retailhub.demo.master import COUNTRIES, FIRST_CUSTOMER_ID, build_master
from retailhub.errors import UsageError

__all__ = ["COUNTRIES", "DATASETS", "GenerationReport", "generate"]

DATASETS = (ONLINE_RETAIL, SUPERSTORE, PRODUCT_CATALOG, CUSTOMER_BEHAVIOUR)
DEFAULT_CHUNK_LINES = 500_000
MIN_ROWS = 100
MAX_DEFECT_RATE = 0.5

Progress = Callable[[str, int, int], None]


@dataclass
class GenerationReport:
    """What ``generate`` wrote; ``files`` paths are absolute, ``defects.json`` has them relative."""

    out_dir: Path
    files: list[dict[str, Any]] = field(default_factory=list)  # dataset, path, rows, bytes
    rows: dict[str, int] = field(default_factory=dict)  # data lines per dataset, all files
    defects_path: Path = Path()
    seconds: float = 0.0
    defect_counts: dict[str, int] = field(default_factory=dict)  # "dataset/kind/column" -> n

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.files)


def generate(
    out_dir: Path | str,
    rows: int,
    seed: int = 42,
    defect_rate: float = 0.01,
    progress: Progress | None = None,
    *,
    chunk_lines: int = DEFAULT_CHUNK_LINES,
) -> GenerationReport:
    """Generate the four demo datasets and ``defects.json`` under ``out_dir``.

    ``rows`` is the number of Online Retail lines before injected duplicates. Earlier output
    of this generator in ``out_dir`` (its CSV files and ``defects.json``) is removed first, so
    no file of a previous run is mistaken for part of this one. ``progress(stage, done,
    total)`` is called after each chunk. ``chunk_lines`` bounds memory; it does not change
    the output.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < MIN_ROWS:
        raise ValueError(f"rows must be an integer >= {MIN_ROWS}, got {rows!r}")
    if not 0 <= defect_rate <= MAX_DEFECT_RATE:
        raise ValueError(f"defect_rate must be within [0, {MAX_DEFECT_RATE}], got {defect_rate}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    began = time.perf_counter()
    out_dir = Path(out_dir)
    _clear_previous(out_dir)

    master = build_master(seed, rows)
    plan = online_retail.plan_orders(seed, rows, master)
    or_defects = online_retail.defect_plan(seed, rows, defect_rate)
    log = DefectLog()
    log.expect(
        ONLINE_RETAIL,
        ONLINE_RETAIL_KINDS,
        defect_count(defect_rate, rows, len(ONLINE_RETAIL_KINDS)),
    )
    files = online_retail.OnlineRetailWriter(seed, master, plan, or_defects, chunk_lines).write(
        out_dir, log, progress
    )
    files.append(catalog.write_catalog(seed, defect_rate, master, out_dir, log))
    if progress is not None:
        progress(PRODUCT_CATALOG, 1, 1)
    files += superstore.write_superstore(
        seed, rows, master, out_dir, max(1, chunk_lines // 4), progress
    )
    active = online_retail.customers_with_clean_lines(plan, or_defects)
    files += behaviour.write_behaviour(
        seed, rows, defect_rate, master, active, out_dir, log, progress
    )

    datasets: dict[str, Any] = {}
    for name in DATASETS:
        mine = [f for f in files if f["dataset"] == name]
        datasets[name] = {
            "rows": sum(f["rows"] for f in mine),
            "files": [{"file": f["path"], "rows": f["rows"], "bytes": f["bytes"]} for f in mine],
        }
    defects_path = out_dir / "defects.json"
    write_defects_json(
        defects_path,
        seed=seed,
        rows=rows,
        defect_rate=defect_rate,
        datasets=datasets,
        log=log,
        extra={
            "customer_ids": {
                "first": FIRST_CUSTOMER_ID,
                "last": int(master.customers.ids.max()),
            },
        },
    )
    counts = {
        "/".join(x for x in (e["dataset"], e["kind"], e["column"]) if x): e["count"]
        for e in log.summary()
    }
    return GenerationReport(
        out_dir=out_dir,
        files=[{**f, "path": out_dir / f["path"]} for f in files],
        rows={k: v["rows"] for k, v in datasets.items()},
        defects_path=defects_path,
        seconds=time.perf_counter() - began,
        defect_counts=counts,
    )


def _clear_previous(out_dir: Path) -> None:
    """Remove the files a previous run of the generator wrote, as its ``defects.json`` lists
    them, and nothing else: a file someone put beside them is theirs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder: choose another --out")
    manifest = out_dir / "defects.json"
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))["datasets"]
        written = [f["file"] for d in previous.values() for f in d["files"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        written = []
    for name in written:
        path = (out_dir / name).resolve()
        if path.is_relative_to(out_dir.resolve()) and path.suffix == ".csv":
            path.unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
