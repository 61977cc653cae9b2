"""What every mart builder needs: the compute connection, the core relations, the sources.

The marts are computed per **source system** (one shop, one currency): revenue of Online Retail
(GBP) and Superstore (USD) is never added up, customers are scored against the customers of
their own shop, and each source has its own reference date (the day after its last line).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from retailhub.errors import ModelError

if TYPE_CHECKING:
    import pandas as pd

    from retailhub.config.settings import AnalyticsConfig

log = logging.getLogger(__name__)

#: Schema of the marts inside the run's scratch database (published as ``marts.<name>``).
MARTS_SCHEMA = "marts"

#: The core relations the marts read, by model name.
CORE_MODELS = (
    "fct_sales",
    "fct_customer_activity",
    "dim_product",
    "dim_geography",
    "dim_channel",
)


@dataclass(frozen=True)
class SourceInfo:
    """One source system of ``core.fct_sales`` and its calendar."""

    source_system: str
    currency_code: str
    first_date: date
    last_date: date

    @property
    def reference_date(self) -> date:
        """The day after the last line: RFM recency and churn are measured "as of" this day."""
        return self.last_date + timedelta(days=1)

    @property
    def sql(self) -> str:
        """The source name as a SQL string literal."""
        return sql_str(self.source_system)


@dataclass
class MartContext:
    """Shared state of one analytics build (a run's ``analytics`` task)."""

    con: duckdb.DuckDBPyConnection
    relations: dict[str, str]
    config: AnalyticsConfig
    catalog: str = "work"
    #: Engine of the warehouse the marts are published to: the SQL stored for readers (the
    #: insights' backing queries) is written in its dialect.
    dialect: str = "duckdb"
    sources: list[SourceInfo] = field(default_factory=list)
    evaluation: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def rel(self, model: str) -> str:
        """Qualified compute relation of a core model (``work.core.fct_sales``)."""
        return self.relations[model]

    def mart(self, name: str) -> str:
        """Qualified compute relation of a mart (``work.marts.mart_kpi_daily``)."""
        return f"{self.catalog}.{MARTS_SCHEMA}.{name}"

    # -- execution -----------------------------------------------------------------------
    def execute(self, sql: str, what: str) -> None:
        """Run one statement; an engine error becomes a ModelError naming the mart."""
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise ModelError(f"analytics mart {what} failed: {exc}", model=what) from exc

    def frame(self, sql: str, what: str) -> pd.DataFrame:
        """Run a query and return a pandas frame (only for aggregated, small results)."""
        try:
            return self.con.sql(sql).df()
        except duckdb.Error as exc:
            raise ModelError(f"analytics mart {what} failed: {exc}", model=what) from exc

    def create_mart(
        self,
        name: str,
        select_sql: str,
        depends_on: tuple[str, ...],
        grain: tuple[str, ...] = (),
        indexes: tuple[tuple[str, ...], ...] = (),
    ) -> dict[str, Any]:
        """``create or replace table work.marts.<name> as <select>``; the publish entry.

        ``grain`` names the columns that identify a row (unique by construction): a warehouse
        that enforces keys (PostgreSQL) makes them the primary key, so lookups by it are
        indexed. ``indexes`` are what dashboards filter a mart without such a grain on."""
        relation = self.mart(name)
        self.execute(f"create or replace table {relation} as {select_sql}", name)
        rows = self.con.sql(f"select count(*) from {relation}").fetchall()[0][0]
        entry = {
            "name": name,
            "relation": relation,
            "schema": MARTS_SCHEMA,
            "rows": int(rows),
            "depends_on": list(depends_on),
        }
        if grain:
            entry["primary_key"] = list(grain)
        if indexes:
            entry["indexes"] = [list(columns) for columns in indexes]
        return entry

    def create_mart_from_frame(
        self,
        name: str,
        frame: pd.DataFrame,
        columns: dict[str, str],
        order_by: str,
        depends_on: tuple[str, ...],
        grain: tuple[str, ...] = (),
        indexes: tuple[tuple[str, ...], ...] = (),
    ) -> dict[str, Any]:
        """Write a small pandas result as a mart with explicit column types and row order.

        Explicit types keep the table's schema the same whether the frame is empty or not
        (an empty object column would otherwise become INTEGER), which keeps the marts stable
        across runs and engines.
        """
        view = f"_mart_frame_{name}"
        data = frame.reindex(columns=list(columns))
        self.con.register(view, data)
        try:
            select = ", ".join(f'CAST("{col}" AS {typ}) AS "{col}"' for col, typ in columns.items())
            return self.create_mart(
                name,
                f"select {select} from {view} order by {order_by}",
                depends_on,
                grain=grain,
                indexes=indexes,
            )
        finally:
            self.con.unregister(view)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Record how long a part of the build took (logged, and kept for the benchmark)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.timings[what] = self.timings.get(what, 0.0) + seconds
            log.info("analytics %s: %.2fs", what, seconds)

    # -- model evaluation rows -----------------------------------------------------------
    def record(
        self,
        source: str | None,
        model: str,
        metric: str,
        value: float | None = None,
        detail: Any = None,
    ) -> None:
        """One row of ``marts.mart_model_evaluation`` (a number, or a note in ``detail``)."""
        number = None if value is None else float(value)
        if number is not None and not math.isfinite(number):
            number = None
        text = detail if detail is None or isinstance(detail, str) else json_text(detail)
        self.evaluation.append(
            {
                "source_system": source,
                "model": model,
                "metric": metric,
                "value": number,
                "detail": text,
            }
        )


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_date(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def json_text(value: Any) -> str:
    """Deterministic JSON (sorted keys, NaN as null) for evidence and details."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, date):
            return v.isoformat()
        if hasattr(v, "item"):  # numpy scalars
            v = v.item()
        if isinstance(v, float):
            return None if not math.isfinite(v) else round(v, 6)
        return v

    return json.dumps(clean(value), sort_keys=True, ensure_ascii=False)


def load_sources(ctx: MartContext) -> list[SourceInfo]:
    """Source systems with at least one sales line, in name order, with their date range."""
    rows = ctx.con.sql(
        f"""
        select source_system, min(currency_code) as currency_code,
               min(order_date) as first_date, max(order_date) as last_date
        from {ctx.rel("fct_sales")}
        where source_system is not null and order_date is not null
        group by source_system
        order by source_system
        """
    ).fetchall()
    return [SourceInfo(r[0], r[1] or "", r[2], r[3]) for r in rows]
