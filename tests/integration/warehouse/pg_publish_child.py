"""A publishing child process for the crash tests.

Run as ``python pg_publish_child.py URL WORK MODE ROWS``.

It builds ``ROWS`` rows in DuckDB and publishes them to ``core.big`` (replace) and ``raw.events``
(append). MODE ``load`` just publishes (the test kills it while COPY runs); MODE ``swap`` stops
inside the swap transaction after the first table, prints ``SWAPPING`` and sleeps, so the test
can kill it there. It prints ``READY`` once connected, holding the writer lock.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from retailhub.warehouse.base import PublishBatch
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.postgres import PostgresWarehouse


def main() -> None:
    url, work, mode, rows = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    wh = PostgresWarehouse(
        target=PgTarget.from_url(url), work_db=work / "child.duckdb", label="crash-child"
    )
    print("READY", flush=True)
    con = wh.compute
    con.execute("create schema if not exists work.core")
    con.execute(
        "create table work.core.big as select range as id, -1 as val, "
        f"repeat('x', 200) as pad from range({rows})"
    )
    con.execute(
        "create table work.core.events as select range as id, 'crash-run' as _run_id, "
        f"repeat('y', 200) as pad from range({rows})"
    )

    def hook(table: str) -> None:
        if mode == "swap":
            print("SWAPPING", table, flush=True)
            time.sleep(120)

    wh.publish(
        PublishBatch(
            replace={"core.big": "work.core.big"},
            append={"raw.events": "work.core.events"},
            after_table=hook,
        )
    )
    print("PUBLISHED", flush=True)


if __name__ == "__main__":
    main()
