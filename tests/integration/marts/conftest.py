"""A hand-built core star schema in DuckDB and a helper that builds the marts on it.

The marts read only a few columns of the core tables; ``core_db`` creates exactly those, with
the core's types (money DECIMAL(18,4)), in a ``work`` catalog like the pipeline's scratch
database, so :func:`retailhub.pipeline.marts.build_all` runs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pytest

from retailhub.config.settings import AnalyticsConfig
from retailhub.pipeline.marts import build_all
from retailhub.pipeline.marts.context import CORE_MODELS, MartContext

FCT_TYPES = {
    "source_system": "VARCHAR",
    "order_id": "VARCHAR",
    "order_line": "INTEGER",
    "order_date": "DATE",
    "customer_id": "VARCHAR",
    "customer_key": "BIGINT",
    "product_key": "BIGINT",
    "product_id": "VARCHAR",
    "geography_key": "BIGINT",
    "channel_key": "BIGINT",
    "quantity": "BIGINT",
    "net_amount": "DECIMAL(18,4)",
    "profit_amount": "DECIMAL(18,4)",
    "currency_code": "VARCHAR",
    "is_cancellation": "BOOLEAN",
    "is_adjustment": "BOOLEAN",
    "is_product": "BOOLEAN",
}
PRODUCT_TYPES = {
    "product_key": "BIGINT",
    "product_id": "VARCHAR",
    "product_name": "VARCHAR",
    "category": "VARCHAR",
    "sub_category": "VARCHAR",
}
GEO_TYPES = {"geography_key": "BIGINT", "country": "VARCHAR"}
CHANNEL_TYPES = {"channel_key": "BIGINT", "channel_name": "VARCHAR", "is_unknown": "BOOLEAN"}
ACTIVITY_TYPES = {
    "customer_key": "BIGINT",
    "channel_key": "BIGINT",
    "orders": "BIGINT",
    "sessions": "BIGINT",
}
CHANNELS = [(0, "unknown", True), (1, "web", False), (2, "mobile", False), (3, "store", False)]
COUNTRIES = [(0, "Unknown"), (1, "United Kingdom"), (2, "France"), (3, "Germany")]


def line(
    order_id: str,
    day: date,
    product: str,
    quantity: int,
    price: float,
    *,
    customer: str | None = None,
    source: str = "shop",
    currency: str = "GBP",
    country: int = 1,
    channel: int = 1,
    profit: float | None = None,
    cancellation: bool = False,
    adjustment: bool = False,
    is_product: bool = True,
) -> dict[str, Any]:
    """One fct_sales line; the amount is quantity x price (signed, like the core)."""
    return {
        "source_system": source,
        "order_id": order_id,
        "order_date": day,
        "customer_id": customer,
        "customer_key": customer_key(source, customer) if customer else 0,
        "product_key": product_key(source, product),
        "product_id": product,
        "geography_key": country,
        "channel_key": channel,
        "quantity": quantity,
        "net_amount": round(quantity * price, 4),
        "profit_amount": profit,
        "currency_code": currency,
        "is_cancellation": cancellation,
        "is_adjustment": adjustment,
        "is_product": is_product,
    }


def _stable_key(text: str) -> int:
    return sum(ord(c) * 31**i for i, c in enumerate(text)) % 10**12 + 1


def product_key(source: str, product: str) -> int:
    return _stable_key(f"product|{source}|{product}")


def customer_key(source: str, customer: str) -> int:
    return _stable_key(f"customer|{source}|{customer}")


@dataclass
class CoreData:
    """Inputs of a hand-built core: sales lines, products (source, id, name, cat, sub)."""

    lines: list[dict[str, Any]]
    products: list[tuple[str, str, str | None, str | None, str | None]] = field(
        default_factory=list
    )
    activity: list[tuple[int, int, int, int]] = field(default_factory=list)


def _table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, types: dict) -> None:
    view = f"_src_{name}"
    con.register(view, frame.reindex(columns=list(types)))
    cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
    con.execute(f"create or replace table work.core.{name} as select {cols} from {view}")
    con.unregister(view)


def load_core(con: duckdb.DuckDBPyConnection, data: CoreData) -> None:
    lines = pd.DataFrame(data.lines).reindex(columns=list(FCT_TYPES))
    lines["order_line"] = lines.groupby(["source_system", "order_id"]).cumcount() + 1
    _table(con, "fct_sales", lines, FCT_TYPES)
    known = {(p[0], p[1]) for p in data.products}
    products = [
        (product_key(s, pid), pid, name, cat, sub) for s, pid, name, cat, sub in data.products
    ]
    for source, pid in sorted({(r["source_system"], r["product_id"]) for r in data.lines}):
        if (source, pid) not in known:
            products.append((product_key(source, pid), pid, None, None, None))
    _table(con, "dim_product", pd.DataFrame(products, columns=list(PRODUCT_TYPES)), PRODUCT_TYPES)
    _table(con, "dim_geography", pd.DataFrame(COUNTRIES, columns=list(GEO_TYPES)), GEO_TYPES)
    _table(con, "dim_channel", pd.DataFrame(CHANNELS, columns=list(CHANNEL_TYPES)), CHANNEL_TYPES)
    _table(
        con,
        "fct_customer_activity",
        pd.DataFrame(data.activity, columns=list(ACTIVITY_TYPES)),
        ACTIVITY_TYPES,
    )


@pytest.fixture
def core_con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("attach ':memory:' as work")
    con.execute("create schema work.core")
    yield con
    con.close()


def build(
    con: duckdb.DuckDBPyConnection, data: CoreData, **config: Any
) -> tuple[MartContext, list[dict[str, Any]]]:
    """Load ``data`` as the core and build every mart; returns the context and the entries."""
    load_core(con, data)
    ctx = MartContext(
        con=con,
        relations={m: f"work.core.{m}" for m in CORE_MODELS},
        config=AnalyticsConfig(**config),
        catalog="work",
    )
    return ctx, build_all(ctx)


def mart(con: duckdb.DuckDBPyConnection, name: str, where: str = "true") -> pd.DataFrame:
    return con.sql(f"select * from work.marts.{name} where {where}").df()
