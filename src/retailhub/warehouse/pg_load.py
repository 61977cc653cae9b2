"""Bulk loading DuckDB relations into PostgreSQL: binary COPY from Arrow, several streams.

One producer reads the relation from DuckDB as Arrow record batches; ``workers`` consumers,
each on its own ADBC connection, stream those batches into the same table with binary COPY
(``adbc_ingest``). PostgreSQL parses one COPY stream per backend, so two streams use two
server cores while the client encodes the next batches. The queue between them is bounded,
so memory stays at a few batches whatever the table's size.

Loads go to staging tables only; making them visible is the adapter's short swap
transaction, so nothing here needs to be atomic.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.2
#: DuckDB's memory budget while a load only streams tables out: a scan needs a few vectors, and
#: a buffer cache filled to the run's budget only adds to the process's peak (loading the 10M
#: row fct_sales: 1.77 GB peak with 1.25 GB, 1.37 GB with 512 MB, equally fast).
STREAMING_MEMORY = "512MB"
_SIZE = re.compile(r"\s*([0-9.]+)\s*([kmgt]?i?b|bytes?)\s*", re.IGNORECASE)
_UNIT = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def size_bytes(text: str) -> int | None:
    """Bytes of a DuckDB size setting ("1.25GB", "488.2 MiB"); None if unreadable."""
    match = _SIZE.fullmatch(text)
    if not match or match.group(2).lower() not in _UNIT:
        return None
    return int(float(match.group(1)) * _UNIT[match.group(2).lower()])


@contextlib.contextmanager
def streaming_memory(con: duckdb.DuckDBPyConnection, configured: str | None) -> Iterator[None]:
    """Lower DuckDB's memory limit to STREAMING_MEMORY for the block, then restore
    ``configured`` (None: DuckDB's default). A limit already lower is left alone."""
    limit = size_bytes(configured) if configured else None
    streaming = size_bytes(STREAMING_MEMORY)
    if limit is not None and streaming is not None and limit <= streaming:
        yield
        return
    try:
        con.execute(f"set memory_limit = '{STREAMING_MEMORY}'")
    except duckdb.Error as exc:  # cannot evict enough right now: load with the usual budget
        log.debug("memory limit not lowered for the load: %s", exc)
        yield
        return
    try:
        yield
    finally:
        if configured:
            con.execute(f"set memory_limit = '{configured}'")
        else:
            con.execute("reset memory_limit")


@dataclass(frozen=True)
class LoadJob:
    """Copy the rows of ``select_sql`` (DuckDB) into the existing table ``schema.table``."""

    schema: str
    table: str
    select_sql: str


@dataclass
class LoadStats:
    rows: int = 0
    seconds: float = 0.0


class LoadFailed(Exception):
    """A stream failed; ``table`` names where (the adapter turns it into a WarehouseError)."""

    def __init__(self, table: str, cause: BaseException) -> None:
        super().__init__(f"{table}: {cause}")
        self.table = table
        self.cause = cause


class BulkLoader:
    """Parallel ADBC COPY streams, reused for every table of one publish."""

    def __init__(
        self,
        compute: duckdb.DuckDBPyConnection,
        connect: Callable[[], Any],
        *,
        workers: int = 2,
        batch_rows: int = 131_072,
    ) -> None:
        self.compute = compute
        self.workers = max(1, workers)
        self.batch_rows = batch_rows
        self._connect = connect
        self._conns: list[Any] = []
        self.stats: dict[str, LoadStats] = {}

    def __enter__(self) -> BulkLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(Exception):  # closing a broken connection
                conn.close()
        self._conns.clear()

    def _connections(self, n: int) -> list[Any]:
        while len(self._conns) < n:
            self._conns.append(self._connect())
        return self._conns[:n]

    def load(self, jobs: Sequence[LoadJob]) -> dict[str, LoadStats]:
        for job in jobs:
            self._load_one(job)
        return self.stats

    def _load_one(self, job: LoadJob) -> None:
        started = time.perf_counter()
        name = f"{job.schema}.{job.table}"
        cursor = self.compute.cursor()
        try:
            reader = cursor.sql(job.select_sql).to_arrow_reader(self.batch_rows)
            first = [reader.read_next_batch()]
            # DuckDB's batches are a little under batch_rows (whole vectors): whether a second
            # one follows, not the first one's size, says whether the table is big.
            with contextlib.suppress(StopIteration):
                first.append(reader.read_next_batch())
        except StopIteration:
            self.stats[name] = LoadStats(0, time.perf_counter() - started)
            cursor.close()
            return
        except duckdb.Error as exc:
            cursor.close()
            raise LoadFailed(name, exc) from exc
        try:
            rows = self._stream(job, reader, first)
        finally:
            cursor.close()
        self.stats[name] = LoadStats(rows, time.perf_counter() - started)
        log.debug("loaded %s rows into %s in %.2fs", rows, name, self.stats[name].seconds)

    def _stream(
        self, job: LoadJob, reader: pa.RecordBatchReader, first: list[pa.RecordBatch]
    ) -> int:
        schema = reader.schema
        # A table that fits in one batch needs one stream; big ones get every worker.
        n = 1 if len(first) == 1 else self.workers
        conns = self._connections(n)
        q: queue.Queue[Any] = queue.Queue(maxsize=2 * n)
        failed = threading.Event()
        name = f"{job.schema}.{job.table}"

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                try:
                    item = q.get(timeout=_POLL_S)
                except queue.Empty:
                    if failed.is_set():
                        raise LoadFailed(name, RuntimeError("another stream failed")) from None
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item

        def consume(conn: Any) -> int:
            try:
                cur = conn.cursor()
                try:
                    stream = pa.RecordBatchReader.from_batches(schema, batches())
                    count = cur.adbc_ingest(
                        job.table, stream, mode="append", db_schema_name=job.schema
                    )
                finally:
                    cur.close()
                return int(count) if count and count > 0 else 0
            except BaseException:
                failed.set()
                raise

        def put(item: Any) -> bool:
            while not failed.is_set():
                try:
                    q.put(item, timeout=_POLL_S)
                    return True
                except queue.Full:
                    continue
            return False

        produced = 0
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="rh-copy") as pool:
            futures = [pool.submit(consume, conn) for conn in conns]
            try:
                for batch in itertools.chain(first, reader):
                    if not put(batch):
                        break
                    produced += batch.num_rows
            except BaseException as exc:
                failed.set()
                raise LoadFailed(name, exc) from exc
            finally:
                for _ in futures:
                    put(_END)
            errors = [f.exception() for f in futures]
        for err in errors:
            if err is not None:
                raise err if isinstance(err, LoadFailed) else LoadFailed(name, err)
        # ADBC may report -1 for streamed ingests; the producer's count is exact.
        return produced
