"""A table or query in PostgreSQL or MySQL/MariaDB, optionally extracted incrementally.

With ``watermark_column`` set, each extraction reads the rows from the watermark the ledger
stored after the previous run (inclusive, less ``watermark_lookback``), drops those it read
before (see :mod:`retailhub.sources.watermark`), and reports the highest value seen and the
fingerprints of its window, which the pipeline stores once the run is published.
"""

from __future__ import annotations

import hashlib
import logging
import os
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import pyarrow as pa

from retailhub.config.sources import DatabaseSourceConfig
from retailhub.errors import ConfigError, SourceError
from retailhub.sources.base import InputUnit, SourceState, StoredWindow
from retailhub.sources.db_drivers import DbTarget, stream_mysql, stream_postgres
from retailhub.sources.watermark import WatermarkWindow, lower_bound

log = logging.getLogger(__name__)

_DEFAULT_PORT = {"postgresql": 5432, "mysql": 3306}
_DEFAULT_PASSWORD_ENV = {"postgresql": "PGPASSWORD", "mysql": "MYSQL_PWD"}


class DatabaseSource:
    """One extraction per run; see the module docstring for the watermark semantics."""

    def __init__(self, config: DatabaseSourceConfig) -> None:
        self.config = config
        self._window: WatermarkWindow | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def discover(self, state: SourceState) -> list[InputUnit]:
        target = self._target(with_password=False)
        cfg = self.config
        # The unit names what a stored watermark was taken on (relation and column), so one
        # taken on `updated_at` is never compared with `id`, nor one of a query with another.
        base = f"{target.display}#{cfg.table or 'query'}"
        uri = base
        if cfg.query is not None:
            uri += "-" + hashlib.sha256(cfg.query.strip().encode()).hexdigest()[:12]
        if cfg.watermark_column:
            uri += f"?watermark={cfg.watermark_column}"
        start = state.last_watermark if cfg.watermark_column else None
        stored = state.watermark_uri
        # units recorded before they named their column (``base``) are taken as they are
        if start is not None and stored is not None and stored not in (uri, base):
            raise ConfigError(
                f"source {self.name!r}: the stored watermark {start!r} was taken on {stored}, "
                f"but the source now reads {uri}: a watermark of another column, table or query "
                "would skip or repeat rows. Restore the earlier table/query/watermark_column, or "
                "give the source a new name (it then starts from no watermark, keeping its "
                "dataset)",
                key=f"sources.{self.name}.watermark_column",
            )
        window = state.watermark_window if start is not None else None
        return [InputUnit(self.name, uri, None, None, None, start, watermark_window=window)]

    def new_watermark(self) -> str | None:
        return self._window.watermark if self._window is not None else None

    def read_checksum(self) -> str | None:
        return None

    def watermark_window(self) -> StoredWindow | None:
        return self._window.window() if self._window is not None else None

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        target = self._target(with_password=True)
        cfg = self.config
        previous = unit.watermark_window
        column = self.config.watermark_column
        if column and unit.watermark_from is not None and target.dialect == "postgresql":
            column = self._column_as_named(target, column)
        sql = self.extraction_sql(unit.watermark_from, previous, column=column)
        if cfg.watermark_column:
            self._window = WatermarkWindow(
                cfg.watermark_column,
                stored=unit.watermark_from,
                previous=previous,
                lookback=cfg.lookback,
                source=self.name,
            )
        if target.dialect == "postgresql":
            schema, batches = stream_postgres(target, sql, self.name)
        else:
            schema, batches = stream_mysql(target, sql, self.name, cfg.batch_size)
        if self._window is not None:
            batches = self._window.stream(batches, self._watermark_index(schema))
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _column_as_named(self, target: DbTarget, column: str) -> str:
        """The watermark column as the relation spells it. The first extraction finds it
        whatever its case, but PostgreSQL's quoted names are case-sensitive, so the WHERE
        of the next one failed for `UpdatedAt` against `updatedat` (a zero-row probe)."""
        schema, batches = stream_postgres(target, self.extraction_sql(None) + " LIMIT 0", self.name)
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        names = [n for n in schema.names if n.lower() == column.lower()]
        return column if column in names or len(names) != 1 else names[0]

    def extraction_sql(
        self,
        watermark_from: str | None,
        previous: StoredWindow | None = None,
        *,
        column: str | None = None,
    ) -> str:
        """The SELECT sent to the server (no secrets in it, so it may appear in errors).

        With the stored watermark's window (``previous``): from the watermark on, inclusive,
        less the lookback as far as the window reaches; else strictly above it (a watermark
        stored without a window).
        """
        dialect = self.config.dialect
        if self.config.table is not None:
            relation = ".".join(_quote_ident(p, dialect) for p in self.config.table.split("."))
        else:
            body = (self.config.query or "").strip().rstrip(";")
            # on its own line, so a trailing "-- comment" in the query cannot swallow the bracket
            relation = f"({body}\n) AS rh_extract"
        sql = f"SELECT * FROM {relation}"
        if self.config.watermark_column and watermark_from is not None:
            column = _quote_ident(column or self.config.watermark_column, dialect)
            if previous is not None:
                bound = lower_bound(watermark_from, self.config.lookback, previous.start)
                sql += f" WHERE {column} >= {_quote_literal(bound, dialect)}"
            else:
                sql += f" WHERE {column} > {_quote_literal(watermark_from, dialect)}"
        return sql

    def _watermark_index(self, schema: pa.Schema) -> int:
        wanted = (self.config.watermark_column or "").lower()
        index = next((i for i, n in enumerate(schema.names) if n.lower() == wanted), None)
        if index is None:
            raise SourceError(
                f"source {self.name!r}: watermark_column {self.config.watermark_column!r} is not "
                f"in the extracted columns {schema.names}",
                source=self.name,
            )
        return index

    def _target(self, *, with_password: bool) -> DbTarget:
        cfg = self.config
        parts = urlsplit(cfg.url)
        dialect = cfg.dialect
        password = None
        if with_password:
            env = cfg.password_env or _DEFAULT_PASSWORD_ENV[dialect]
            password = os.environ.get(env)
            if cfg.password_env and password is None:
                raise ConfigError(
                    f"source {self.name!r}: environment variable {env} (password_env) is not set",
                    key=f"sources.{self.name}.password_env",
                )
        options = urlencode(parse_qsl(parts.query)) if dialect == "postgresql" else ""
        return DbTarget(
            dialect=dialect,
            host=parts.hostname or "localhost",
            port=parts.port or _DEFAULT_PORT[dialect],
            user=unquote(parts.username) if parts.username else None,
            password=password,
            database=unquote(parts.path.lstrip("/")) or None,
            options=options,
        )


def _quote_ident(name: str, dialect: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str, dialect: str) -> str:
    """A string literal both servers coerce to the column's type (timestamp, integer, text)."""
    if dialect == "mysql":
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"
