"""Benchmark the transform stage alone: build_models (per model) and test_models.

Rebuilding the star schema from saved accepted rows takes seconds, where a whole
``retailhub bench`` run regenerates and re-validates everything first. Get accepted tables by
keeping a run's work database::

    RETAILHUB_RUNNER__KEEP_WORK_DB=true .venv/bin/retailhub bench --rows 1000000 \\
        --workdir /tmp/tb1m --keep
    .venv/bin/python benchmarks/bench_transform.py --workdir /tmp/tb1m --repeat 5

or point ``--workdir`` at a warehouse file: its ``raw`` tables are the accepted rows.

Each repetition opens a fresh connection set up like the pipeline's (in-memory main database,
an on-disk ``work`` database for the models, the same memory limit and a spill directory),
points ``source('x')`` at the saved ``accepted.x`` tables and builds every model. The machine
is shared, so compare medians over repetitions, and CPU seconds (DuckDB's threads included),
which other people's load disturbs less than wall time. ``--models DIR`` builds another model
tree (a copy of an older version, say) for a side-by-side comparison; to time an older runner
too, put a copy of the older package first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from retailhub.models import Model, build_models, load_model, load_models, test_models

DATASETS = ("online_retail", "superstore", "product_catalog", "customer_behaviour")


def find_work_db(workdir: Path) -> Path:
    """The newest kept work database under ``workdir`` (or ``workdir`` itself if a file)."""
    if workdir.is_file():
        return workdir
    found = sorted(workdir.glob(".retailhub/work/*.duckdb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(
            f"no kept work database under {workdir}/.retailhub/work: run retailhub bench with "
            "RETAILHUB_RUNNER__KEEP_WORK_DB=true first"
        )
    return found[-1]


def connect(accepted_db: Path, scratch: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection shaped like the pipeline's, with one temp view per dataset."""
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit})
    con.execute("set enable_progress_bar = false")
    con.execute(f"set temp_directory = '{scratch / 'spill'}'")
    con.execute(f"attach '{accepted_db}' as saved (read_only)")
    con.execute(f"attach '{scratch / 'work.duckdb'}' as work")
    # A kept work database of an older run has ``accepted.<dataset>``; a warehouse file (now
    # that accepted batches are built in the warehouse) has the same rows in ``raw.<dataset>``.
    schemas = {r[0] for r in con.execute("select schema_name from duckdb_tables() "
                                         "where database_name = 'saved'").fetchall()}  # fmt: skip
    for dataset in DATASETS:
        saved = (
            f"saved.accepted.{dataset}"
            if "accepted" in schemas
            else f"(select * exclude (_run_id) from saved.raw.{dataset})"
        )
        con.execute(f"create or replace temp view current_{dataset} as select * from {saved}")
    return con


def cpu_seconds() -> float:
    """CPU time of this process, DuckDB's worker threads included.

    On a shared machine wall time swings with other people's load; CPU time is steadier, so
    both are reported.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_tree(models_dir: Path | None) -> list[Model]:
    """The built-in models, or every model of another tree (to compare two versions)."""
    if models_dir is None:
        return load_models()
    return [load_model(p) for p in sorted(models_dir.rglob("*.sql"))]


def run_once(
    accepted_db: Path, memory_limit: str, models_dir: Path | None
) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per model, for the column tests and in total, for one fresh build."""
    scratch = Path(tempfile.mkdtemp(prefix="rh-bench-transform-"))
    try:
        con = connect(accepted_db, scratch, memory_limit)
        sources = {d: f"current_{d}" for d in DATASETS}
        cpu_marks = [cpu_seconds()]
        began = time.perf_counter()
        built = build_models(
            con,
            load_tree(models_dir),
            sources,
            schema_prefix="work.",
            progress=lambda _message: cpu_marks.append(cpu_seconds()),
        )
        built_at, built_cpu = time.perf_counter(), cpu_seconds()
        failures = test_models(con, built)
        ended, ended_cpu = time.perf_counter(), cpu_seconds()
        if failures:
            raise SystemExit("column tests failed:\n" + "\n".join(map(str, failures)))
        timings = {
            b.name: (b.seconds, cpu_marks[i + 1] - cpu_marks[i]) for i, b in enumerate(built)
        }
        timings["(build_models)"] = (built_at - began, built_cpu - cpu_marks[0])
        timings["(test_models)"] = (ended - built_at, ended_cpu - built_cpu)
        timings["(transform)"] = (ended - began, ended_cpu - cpu_marks[0])
        con.close()
        return timings
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="bench workdir or work DB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="2GB", help="as runner.memory_limit")
    parser.add_argument(
        "--models", type=Path, help="build this model tree instead of the built-in one"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    accepted_db = find_work_db(args.workdir)
    runs = [run_once(accepted_db, args.memory_limit, args.models) for _ in range(args.repeat)]
    names = list(runs[0])

    def stat(kind: int, pick: Callable[[list[float]], float]) -> dict[str, float]:
        return {n: round(pick([r[n][kind] for r in runs]), 3) for n in names}

    result = {
        "work_db": str(accepted_db),
        "models": str(args.models or "built-in"),
        "repeat": args.repeat,
        "median_seconds": stat(0, statistics.median),
        "min_seconds": stat(0, min),
        "median_cpu_seconds": stat(1, statistics.median),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"{accepted_db}  ({args.repeat} runs, peak RSS {result['peak_rss_mb']} MB)")
    print(f"{'model':<26}{'median s':>10}{'min s':>10}{'median cpu s':>14}")
    for name in names:
        print(
            f"{name:<26}{result['median_seconds'][name]:>10.3f}"
            f"{result['min_seconds'][name]:>10.3f}{result['median_cpu_seconds'][name]:>14.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
