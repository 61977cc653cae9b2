"""Streaming readers for the two database families, each returning Arrow batches.

PostgreSQL goes through ADBC, which streams the result as Arrow (binary COPY) with no Python per
row. MySQL/MariaDB goes through pymysql's unbuffered cursor and ``fetchmany``: the driver itself
decodes rows in Python, so we only turn each fetched block into columns and a typed batch.
Connection failures are classified here: "server not reachable" is transient
(SourceUnavailable), "wrong credentials / unknown table" is not (SourceError).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from retailhub.errors import SourceError, SourceUnavailable
from retailhub.sources.redact import scrub

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class DbTarget:
    """Where to connect. ``password`` is only ever used to connect, never shown."""

    dialect: str  # "postgresql" | "mysql"
    host: str
    port: int
    user: str | None
    password: str | None
    database: str | None
    options: str = ""  # extra URL query (e.g. sslmode=require), PostgreSQL only

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def display(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.dialect}://{user}{self.host}:{self.port}/{self.database or ''}"


BatchStream = tuple[pa.Schema, Iterator[pa.RecordBatch]]
ErrorFactory = Callable[[BaseException], Exception]

# -- PostgreSQL ---------------------------------------------------------------------------------

_PG_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "timeout expired",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
)


def stream_postgres(target: DbTarget, sql: str, source: str) -> BatchStream:
    """Run ``sql`` and stream its result as Arrow batches through ADBC."""
    import adbc_driver_postgresql.dbapi as adbc

    auth = quote(target.user or "", safe="")
    if target.password:
        auth += ":" + quote(target.password, safe="")
    query = f"connect_timeout={CONNECT_TIMEOUT_S}" + (
        f"&{target.options}" if target.options else ""
    )
    uri = f"postgresql://{auth}@{target.host}:{target.port}/{quote(target.database or '')}?{query}"
    secrets = (target.password, uri)

    def error(exc: BaseException) -> Exception:
        return _classify(exc, target, source, sql, secrets, _PG_UNREACHABLE)

    try:
        conn = adbc.connect(uri)
    except Exception as exc:
        raise error(exc) from None
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        reader = cursor.fetch_record_batch()
    except Exception as exc:
        _close_adbc(cursor, conn)
        raise error(exc) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except Exception as exc:
                    raise error(exc) from None
                yield batch
        finally:
            _close_adbc(cursor, conn)

    return reader.schema, batches()


def _close_adbc(cursor: Any, conn: Any) -> None:
    """Statement first: ADBC refuses (and later prints a traceback from ``__del__``) to close a
    connection whose statement is still open; a broken connection may refuse both."""
    for handle in (cursor, conn):
        with contextlib.suppress(Exception):
            handle.close()


# -- MySQL / MariaDB ------------------------------------------------------------------------------

_MYSQL_UNREACHABLE_CODES = frozenset({2002, 2003, 2005, 2006, 2013, 1040, 1053})


def stream_mysql(target: DbTarget, sql: str, source: str, batch_size: int) -> BatchStream:
    """Run ``sql`` on an unbuffered cursor and stream ``batch_size`` rows at a time."""
    import pymysql
    import pymysql.cursors

    secrets = (target.password,)

    def error(exc: BaseException) -> Exception:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _MYSQL_UNREACHABLE_CODES:
            return SourceUnavailable(
                f"source {source!r}: database {target.where} unreachable: "
                f"{scrub(str(exc.args[-1]), secrets)}",
                source=source,
                host=target.where,
            )
        return _classify(exc, target, source, sql, secrets, ())

    try:
        conn = pymysql.connect(
            host=target.host,
            port=target.port,
            user=target.user or "root",
            password=target.password or "",
            database=target.database,
            charset="utf8mb4",
            connect_timeout=CONNECT_TIMEOUT_S,
            cursorclass=pymysql.cursors.SSCursor,
        )
    except Exception as exc:
        raise error(exc) from None
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        schema = _mysql_schema(cursor)
    except Exception as exc:
        conn.close()
        raise error(exc) from None

    invalid_dates: dict[str, int] = {}

    def array(values: tuple[Any, ...], field: pa.Field) -> pa.Array:
        if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type):
            # MariaDB's zero dates ('0000-00-00') and other invalid ones come back as text
            bad = sum(isinstance(v, str) for v in values)
            if bad:
                invalid_dates[field.name] = invalid_dates.get(field.name, 0) + bad
                values = tuple(None if isinstance(v, str) else v for v in values)
        elif pa.types.is_string(field.type):
            values = tuple(v if v is None or isinstance(v, str) else str(v) for v in values)
        try:
            return pa.array(values, type=field.type)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise SourceError(
                f"source {source!r}: column {field.name!r} of {target.where} cannot be read "
                f"as {field.type}: {exc}",
                source=source,
            ) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            while True:
                try:
                    rows = cursor.fetchmany(batch_size)
                except Exception as exc:
                    raise error(exc) from None
                if not rows:
                    break
                columns = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays(
                    [array(col, f) for col, f in zip(columns, schema, strict=True)],
                    schema=schema,
                )
        finally:
            conn.close()
        for name, count in invalid_dates.items():
            log.warning(
                "source %s: %d value(s) of column %s are not valid dates (MariaDB zero dates "
                "such as 0000-00-00): landed as NULL",
                source,
                count,
                name,
            )

    return schema, batches()


def _mysql_schema(cursor: Any) -> pa.Schema:
    """Arrow types from the result metadata, so every batch has the same schema."""
    from pymysql.constants import FIELD_TYPE as T

    fields = cursor._result.fields  # carries charset and flags, which description lacks
    out = []
    for f in fields:
        unsigned = bool(f.flags & 32)
        code = f.type_code
        if code in (T.TINY, T.SHORT, T.LONG, T.INT24, T.YEAR):
            typ: pa.DataType = pa.int64()
        elif code == T.LONGLONG:
            typ = pa.uint64() if unsigned else pa.int64()
        elif code in (T.FLOAT, T.DOUBLE):
            typ = pa.float64()
        elif code in (T.DECIMAL, T.NEWDECIMAL):
            # length counts the sign and the decimal point besides the digits
            precision = f.length - (1 if f.scale else 0) - (0 if unsigned else 1)
            precision = max(precision, f.scale, 1)
            # beyond Arrow's 38 digits the exact text is landed; the layout casts it
            typ = pa.decimal128(precision, f.scale) if precision <= 38 else pa.string()
        elif code in (T.DATE, T.NEWDATE):
            typ = pa.date32()
        elif code in (T.DATETIME, T.TIMESTAMP):
            typ = pa.timestamp("us")
        elif code == T.TIME:
            typ = pa.duration("us")
        elif code in (T.BIT, T.GEOMETRY):
            typ = pa.binary()
        elif code in (T.TINY_BLOB, T.MEDIUM_BLOB, T.LONG_BLOB, T.BLOB, T.STRING, T.VAR_STRING):
            typ = pa.binary() if f.charsetnr == 63 else pa.string()
        else:  # VARCHAR, JSON, ENUM, SET and anything new: text is always safe
            typ = pa.string()
        out.append(pa.field(f.name, typ))
    return pa.schema(out)


# -- shared -----------------------------------------------------------------------------------


def _classify(
    exc: BaseException,
    target: DbTarget,
    source: str,
    sql: str,
    secrets: tuple[str | None, ...],
    unreachable_markers: tuple[str, ...],
) -> Exception:
    text = scrub(str(exc), secrets).strip()
    low = text.lower()
    if any(marker in low for marker in unreachable_markers):
        return SourceUnavailable(
            f"source {source!r}: database {target.where} unreachable: {text}",
            source=source,
            host=target.where,
        )
    return SourceError(
        f"source {source!r}: database {target.display} refused the extraction: {text}\n"
        f"  query: {sql}",
        source=source,
        host=target.where,
    )
