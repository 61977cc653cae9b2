"""Benchmark the PostgreSQL warehouse against the seed's approach, on the same generated input.

One invocation:

1. generates ``--rows`` Online Retail transaction rows (plus the proportional other datasets)
   with ``retailhub generate``;
2. **ours** — runs ``retailhub run`` end to end into a fresh PostgreSQL database (ingest,
   quality gate, star schema, stage-and-swap publish with keys and indexes), timed from the
   command's start to its exit; per-stage times come from the run ledger;
3. **reference implementations** (the seed's approach, as most tutorials write it) — pandas
   reads the same Online Retail CSV files and ``DataFrame.to_sql`` loads them through
   SQLAlchemy + psycopg, once with ``method="multi"`` and once with the default method.
   They only load the raw transactions (no validation, no star schema), so they do less
   work than ours. When ``--ref-rows`` / ``--multi-rows`` are below the input size, the
   reference is measured on that many rows and extrapolated linearly (its cost is linear in
   rows), which the output says;
4. prints all times, rows per second and the ratios, and checks the issue's targets:
   10M rows end to end under 40 s, at least 30x faster than ``method="multi"`` and 5x faster
   than the default method.

Usage (needs the ``bench`` extra: ``pip install -e '.[postgres,bench]'``)::

    .venv/bin/python benchmarks/bench_postgres.py --rows 10000000
    .venv/bin/python benchmarks/bench_postgres.py --rows 1000000 --ref-rows 1000000

The machine is shared: load from other processes shows up in wall times, so each measurement
is also given in CPU seconds of this process tree where that is meaningful.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS_10M = 40.0
TARGET_MULTI_RATIO = 30.0
TARGET_DEFAULT_RATIO = 5.0


def main() -> None:
    args = parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rh-bench-pg-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    admin = args.url
    db = f"retailhub_bench_{secrets.token_hex(3)}"
    create_database(admin, db)
    url = admin.rsplit("/", 1)[0] + f"/{db}"
    try:
        data_rows, gen_s = generate(work, args.rows, args.seed)
        ours = run_ours(work, url)
        if args.duckdb:
            ours_duck = run_ours(work, f"duckdb:///{work / 'warehouse' / 'bench.duckdb'}")
        else:
            ours_duck = None
        files = sorted((work / "data" / "online_retail").glob("*.csv"))
        loader = run_ours_load(files, url)
        ref_default = run_reference(files, url, min(args.ref_rows, data_rows), method=None)
        ref_multi = run_reference(files, url, min(args.multi_rows, data_rows), method="multi")
        report(args.rows, data_rows, gen_s, ours, ours_duck, loader, ref_default, ref_multi)
    finally:
        if not args.keep:
            drop_database(admin, db)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nkept: {work} and database {db}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="transaction rows to generate")
    p.add_argument(
        "--ref-rows",
        type=int,
        default=1_000_000,
        help="rows the default-method to_sql reference loads (extrapolated beyond)",
    )
    p.add_argument(
        "--multi-rows",
        type=int,
        default=200_000,
        help="rows the method='multi' to_sql reference loads (extrapolated beyond)",
    )
    p.add_argument(
        "--url",
        default=os.environ.get(
            "RETAILHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="administrator URL; a throwaway database is created next to it",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--duckdb", action="store_true", help="also run the pipeline into DuckDB")
    p.add_argument("--keep", action="store_true", help="keep the data and the database")
    return p.parse_args()


# -- set-up ---------------------------------------------------------------------------------
def create_database(admin: str, db: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(admin), autocommit=True) as conn:
        conn.execute(f'create database "{db}"')


def drop_database(admin: str, db: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(admin), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{db}" with (force)')


def _dsn(url: str) -> str:
    from retailhub.warehouse.pg_conn import PgTarget

    return PgTarget.from_url(url).conninfo()


def cli(*args: str, cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``retailhub ARGS``; return (wall seconds, CPU seconds of the child, result)."""
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "retailhub.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(
            f"retailhub {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return wall, cpu, proc


def generate(work: Path, rows: int, seed: int) -> tuple[int, float]:
    from retailhub.config.scaffold import scaffold

    scaffold(work, force=True)
    wall, _, _ = cli(
        "-q",
        "generate",
        "--out",
        str(work / "data"),
        "--rows",
        str(rows),
        "--seed",
        str(seed),
        cwd=work,
    )
    data_rows = 0
    for path in (work / "data" / "online_retail").glob("*.csv"):
        with open(path, "rb") as fh:
            data_rows += sum(1 for _ in fh) - 1
    return data_rows, wall


# -- ours -----------------------------------------------------------------------------------
def run_ours(work: Path, url: str) -> dict[str, Any]:
    wall, cpu, proc = cli("-q", "run", "--project", str(work), "--warehouse", url, cwd=work)
    stages = ledger_stages(work, url)
    return {
        "url": url.split("://")[0],
        "wall": wall,
        "cpu": cpu,
        "stages": stages,
        "exit": proc.returncode,
    }


def ledger_stages(work: Path, url: str) -> dict[str, float]:
    from retailhub.pipeline.project import Project

    project = Project.load(work, warehouse_url=url)
    runs = project.runs(1)
    if not runs:
        return {}
    detail = project.run_detail(runs[0]["run_id"])
    out: dict[str, float] = {}
    for task in detail["tasks"]:
        stage = task["task"].split(":")[0]
        out[stage] = out.get(stage, 0.0) + float(task["seconds"] or 0.0)
    return out


def run_ours_load(files: list[Path], url: str) -> dict[str, Any]:
    """Our loading path alone, on exactly the reference's job: CSV files -> one table.

    DuckDB reads the CSV files (as pandas does in the reference) and retailhub's bulk loader
    streams the rows into PostgreSQL with binary COPY from Arrow, as a publish does.
    """
    import duckdb

    from retailhub.warehouse.pg_conn import PgTarget
    from retailhub.warehouse.pg_load import BulkLoader, LoadJob
    from retailhub.warehouse.pg_types import load_columns

    target = PgTarget.from_url(url)
    before = os.times()
    started = time.perf_counter()
    con = duckdb.connect()
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    relation = f"read_csv([{listing}], header = true)"
    described = [(r[0], r[1]) for r in con.execute(f"describe select * from {relation}").fetchall()]
    columns = load_columns(described)
    with target.connect() as conn:
        conn.execute("drop table if exists public.ours_bulk_load")
        conn.execute(f"create table public.ours_bulk_load ({', '.join(c.ddl() for c in columns)})")
    select = f"select {', '.join(c.load_expr for c in columns)} from {relation}"
    with BulkLoader(con, lambda: target.connect_adbc(), workers=2) as bulk:
        stats = bulk.load([LoadJob("public", "ours_bulk_load", select)])
    wall = time.perf_counter() - started
    after = os.times()
    with target.connect() as conn:
        count = conn.execute("select count(*) from public.ours_bulk_load").fetchone()[0]
        conn.execute("drop table public.ours_bulk_load")
    rows = stats["public.ours_bulk_load"].rows
    assert count == rows, (count, rows)
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"rows": rows, "wall": wall, "cpu": cpu}


# -- the seed's approach ----------------------------------------------------------------------
def run_reference(files: list[Path], url: str, rows: int, *, method: str | None) -> dict[str, Any]:
    """pandas.read_csv + DataFrame.to_sql (SQLAlchemy + psycopg) of the first ``rows`` rows."""
    import pandas as pd
    import sqlalchemy

    from retailhub.warehouse.pg_conn import PgTarget

    target = PgTarget.from_url(url)
    engine = sqlalchemy.create_engine(
        sqlalchemy.URL.create(
            "postgresql+psycopg",
            username=target.user,
            password=target.password,
            host=target.host,
            port=target.port,
            database=target.dbname,
        )
    )
    table = f"ref_to_sql_{method or 'default'}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"drop table if exists {table}")
    before = os.times()
    started = time.perf_counter()
    loaded = 0
    for path in files:
        for chunk in pd.read_csv(path, chunksize=100_000):
            chunk = chunk.iloc[: rows - loaded]
            # The tutorial form: method="multi" with a chunksize, or the default method.
            chunk.to_sql(
                table,
                engine,
                if_exists="append",
                index=False,
                method=method,
                chunksize=1_000 if method == "multi" else None,
            )
            loaded += len(chunk)
            if loaded >= rows:
                break
        if loaded >= rows:
            break
    wall = time.perf_counter() - started
    after = os.times()
    with engine.begin() as conn:
        count = conn.exec_driver_sql(f"select count(*) from {table}").scalar()
        conn.exec_driver_sql(f"drop table {table}")
    engine.dispose()
    assert count == loaded, (count, loaded)
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"method": method or "default", "rows": loaded, "wall": wall, "cpu": cpu}


# -- report ---------------------------------------------------------------------------------
def report(
    rows: int,
    data_rows: int,
    gen_s: float,
    ours: dict[str, Any],
    ours_duck: dict[str, Any] | None,
    loader: dict[str, Any],
    ref_default: dict[str, Any],
    ref_multi: dict[str, Any],
) -> None:
    print(
        f"\nInput: {rows:,} generated transaction rows ({data_rows:,} Online Retail CSV lines "
        f"incl. injected duplicates), generated in {gen_s:.1f}s"
    )
    print(f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("Ours, end to end (retailhub run: ingest, quality gate, star schema, publish):")
    for r in (ours, ours_duck):
        if r is None:
            continue
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in r["stages"].items())
        print(
            f"  {r['url']:<10} {r['wall']:7.1f} s wall ({r['cpu']:.1f} s CPU in the client "
            f"process), {data_rows / r['wall']:>10,.0f} rows/s;  stages: {stages}"
        )
    print(
        f"\nOurs, loading only (the reference's job: the same CSV files into one table, "
        f"DuckDB read_csv + retailhub's bulk loader):\n  {loader['wall']:.1f} s wall "
        f"({loader['cpu']:.1f} s CPU in this process) for {loader['rows']:,} rows "
        f"({loader['rows'] / loader['wall']:,.0f} rows/s)"
    )
    print(
        "\nReference: pandas.read_csv + DataFrame.to_sql via SQLAlchemy + psycopg "
        "(raw rows only, no validation or star schema):"
    )
    ratios, load_ratios = {}, {}
    for ref in (ref_default, ref_multi):
        rate = ref["rows"] / ref["wall"]
        full = data_rows / rate
        extrapolated = ref["rows"] < data_rows
        ratios[ref["method"]] = full / ours["wall"]
        load_ratios[ref["method"]] = full / loader["wall"]
        note = (
            f"measured on {ref['rows']:,} rows, extrapolated linearly to {data_rows:,}"
            if extrapolated
            else f"measured on all {data_rows:,} rows"
        )
        label = "method='multi'" if ref["method"] == "multi" else "default method"
        print(
            f"  to_sql({label}): {ref['wall']:.1f} s for {ref['rows']:,} rows "
            f"({rate:,.0f} rows/s) -> {full:,.1f} s for the input ({note})"
        )
        print(
            f"      ours is {load_ratios[ref['method']]:.1f}x faster loading the same input, "
            f"{ratios[ref['method']]:.1f}x faster end to end (whole pipeline vs load only)"
        )
    print("\nTargets (issue 3):")
    per_10m = ours["wall"] * 10_000_000 / max(rows, 1)
    scaled = "" if rows == 10_000_000 else f" (scaled linearly from {rows:,} rows)"
    checks = [
        (
            f"10M rows end to end into PostgreSQL < {TARGET_SECONDS_10M:.0f} s: {per_10m:.1f} s"
            f"{scaled}",
            per_10m < TARGET_SECONDS_10M,
        ),
    ]
    for method, target_ratio in (("multi", TARGET_MULTI_RATIO), ("default", TARGET_DEFAULT_RATIO)):
        label = "method='multi'" if method == "multi" else "default method"
        checks.append(
            (
                f">= {target_ratio:.0f}x faster than to_sql({label}), loading the same "
                f"input: {load_ratios[method]:.1f}x",
                load_ratios[method] >= target_ratio,
            )
        )
        checks.append(
            (
                f">= {target_ratio:.0f}x faster than to_sql({label}), whole pipeline "
                f"end to end: {ratios[method]:.1f}x",
                ratios[method] >= target_ratio,
            )
        )
    for text, ok in checks:
        print(f"  [{'PASS' if ok else 'MISS'}] {text}")


if __name__ == "__main__":
    main()
