"""Keys of published tables: primary key, foreign keys to dimensions, dashboard indexes.

The model sidecars already state each table's grain key (``unique`` + ``not_null``) and its
``relationships`` to dimensions; this module turns such a sidecar (a plain dict, so the
warehouse layer never imports the models layer) into a :class:`TableKeys`. Adapters that can
enforce keys (:class:`SupportsKeys`) receive them before a publish; the incremental publish
uses the same keys to find new fact rows and dimension members.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Columns that dashboards filter facts on, per fact table: time first (every dashboard has a
# date range), then the drill-down dimensions. Low-cardinality keys (channel, geography) are
# left out on purpose: a filter on them returns a large share of the table, where an index
# costs load time and is not used. BRIN suits time on append-only facts loaded in time order.
DASHBOARD_INDEXES: dict[str, tuple[tuple[str, str], ...]] = {
    "fct_sales": (("date_key", "btree"), ("customer_key", "btree"), ("product_key", "btree")),
    "fct_customer_activity": (("date_key", "btree"), ("customer_key", "btree")),
}


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str  # schema.table
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    method: str = "btree"


@dataclass(frozen=True)
class TableKeys:
    """What a warehouse may enforce or index on one published table."""

    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    is_fact: bool = False
    is_dimension: bool = False
    columns: tuple[str, ...] = field(default=(), compare=False)


@runtime_checkable
class SupportsKeys(Protocol):
    """An adapter that creates keys and indexes for the tables it publishes."""

    def declare_keys(self, keys: Mapping[str, TableKeys]) -> None: ...


def keys_from_spec(name: str, spec: Mapping[str, Any], schema: str = "core") -> TableKeys:
    """Derive keys from a model sidecar.

    The primary key is the first ``*_key`` column tested ``unique`` and ``not_null`` (the
    surrogate key the sidecar documents as the grain); each ``relationships`` test becomes a
    foreign key to ``schema.<to>(<field>)``; facts get :data:`DASHBOARD_INDEXES` (or an index
    per foreign key when the table is not listed there).
    """
    columns = [c for c in spec.get("columns", []) or [] if isinstance(c, dict)]
    primary: tuple[str, ...] = ()
    fks: list[ForeignKey] = []
    for col in columns:
        tests = col.get("tests", []) or []
        simple = {t for t in tests if isinstance(t, str)}
        if not primary and col["name"].endswith("_key") and {"unique", "not_null"} <= simple:
            primary = (col["name"],)
        for test in tests:
            if isinstance(test, dict) and "relationships" in test:
                rel = test["relationships"] or {}
                to = str(rel.get("to", ""))
                ref_table = to if "." in to else f"{schema}.{to}"
                fks.append(
                    ForeignKey((col["name"],), ref_table, (str(rel.get("field", col["name"])),))
                )
    is_fact = name.startswith("fct_")
    if name in DASHBOARD_INDEXES:
        indexes = tuple(Index((c,), m) for c, m in DASHBOARD_INDEXES[name])
    elif is_fact:
        indexes = tuple(Index(fk.columns) for fk in fks)
    else:
        indexes = ()
    return TableKeys(
        primary_key=primary,
        foreign_keys=tuple(fks),
        indexes=indexes,
        is_fact=is_fact,
        is_dimension=name.startswith("dim_"),
        columns=tuple(c["name"] for c in columns),
    )
