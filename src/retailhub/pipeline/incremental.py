"""Incremental publishing, the same on every warehouse: new fact rows, SCD2 dimensions.

The transform step always rebuilds the star schema from the whole raw history (cheap in
DuckDB, and it keeps every derived column right). What reaches the warehouse need not be the
whole of it:

* **facts** — only rows whose primary key the warehouse does not have yet are appended (an
  anti-join of the built fact table against the warehouse's keys), so a second run with only
  new input files loads only their rows, and re-running the same inputs loads nothing. A fact
  row already published is not revised; ``--full-refresh`` replaces every table instead. A
  fact table whose published keys are not all in the rebuild on the same ``_line`` (a key
  definition or a line numbering changed) is replaced in full, so no line is there twice.
* **dimensions** — published whole (the adapter upserts them by primary key where facts hold
  foreign keys to them); ``dim_customer`` and ``dim_product`` also get a slowly changing
  dimension type 2 table, ``core.<dim>_history``, with ``valid_from``/``valid_to``/
  ``is_current``, computed here in DuckDB against the previous history: a member whose
  tracked attributes changed gets its current version closed at the run's time and a new one
  opened. The first version of a member is valid from 1900-01-01, so any fact, however old,
  finds the version that applied to it.

Everything is decided from capability flags and the tables' keys, never the engine's name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from retailhub.warehouse import pseudonymise
from retailhub.warehouse.base import PublishBatch, Warehouse
from retailhub.warehouse.keys import TableKeys

log = logging.getLogger(__name__)

WORK_SCHEMA = "work.incr"
FIRST_VALID_FROM = datetime(1900, 1, 1)
SCD_COLUMNS = ("valid_from", "valid_to", "is_current")
#: Where a fact row came from, compared with its key: the row's record number in its file.
PROVENANCE = ("_line",)
# Dimensions tracked as SCD2, and the columns that are measures of activity rather than
# attributes of the member (they change with every order, so they would open a version per run).
SCD_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "core.dim_customer": (
        "first_order_date",
        "last_order_date",
        "order_count",
        "previous_purchases",
        "has_sales",
        "has_behaviour",
        "age",
    ),
    "core.dim_product": ("name_variants",),
}


@dataclass
class IncrementalSummary:
    """What the incremental publish decided, per table (for the report and the audit log)."""

    mode: dict[str, str] = field(default_factory=dict)  # table -> full | new_rows | scd2
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows that will be written

    @property
    def appended(self) -> set[str]:
        return {t for t, m in self.mode.items() if m == "new_rows"}


def history_table(dimension: str) -> str:
    return f"{dimension}_history"


def prepare(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    batch: PublishBatch,
    keys: Mapping[str, TableKeys],
    *,
    now: datetime,
    full_refresh: bool = False,
    pseudonym_key: bytes | None = None,
) -> IncrementalSummary:
    """Rewrite ``batch`` for an incremental publish; returns what was decided.

    Also adds the SCD2 history tables to ``batch.replace`` and their primary keys to ``keys``
    (when ``keys`` is a dict). With ``pseudonym_key``, personal values of the previous
    history still in clear (versions published before the key was set) are pseudonymised, so
    they compare equal to the pseudonymised dimension and no old version keeps them.
    """
    summary = IncrementalSummary()
    con.execute(f"create schema if not exists {WORK_SCHEMA}")
    for target, relation in list(batch.replace.items()):
        table_keys = keys.get(target, TableKeys())
        if (
            not full_refresh
            and table_keys.is_fact
            and table_keys.primary_key
            and warehouse.table_exists(target)
        ):
            pk = table_keys.primary_key
            # A key published for one line may name another after a renumbering (a later
            # file sorting first): the line number the row came from must match too.
            published = warehouse.query(f"select * from {target} limit 0").columns
            shared = set(_columns(con, relation)) & set(published)
            placed = (*pk, *[c for c in PROVENANCE if c in shared])
            existing = _existing_keys(con, warehouse, target, placed)
            stale = _keys_missing_from(con, existing, relation, placed)
            if stale:
                log.warning(
                    "%s: %s published rows have a key the rebuild no longer has on the same "
                    "line (a key definition or a line numbering changed): the table is "
                    "replaced in full, as appending would keep old rows beside new versions",
                    target,
                    f"{stale:,}",
                )
                summary.mode[target] = "full"
            else:
                new = _new_fact_rows(con, target, relation, existing, table_keys.primary_key)
                del batch.replace[target]
                batch.append[target] = new
                summary.mode[target] = "new_rows"
                summary.rows[target] = _count(con, new)
        else:
            summary.mode[target] = "full"
        if target in SCD_DIMENSIONS and table_keys.primary_key:
            history = _scd2(
                con, warehouse, target, relation, table_keys.primary_key, now, pseudonym_key
            )
            hist_name = history_table(target)
            batch.replace[hist_name] = history
            summary.mode[hist_name] = "scd2"
            summary.rows[hist_name] = _count(con, history)
            if isinstance(keys, dict):
                keys[hist_name] = TableKeys(primary_key=(*table_keys.primary_key, "valid_from"))
    return summary


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _work(target: str, suffix: str) -> str:
    return f"{WORK_SCHEMA}.{_ident(target.replace('.', '__') + '_' + suffix)}"


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])


def _existing_keys(
    con: duckdb.DuckDBPyConnection, warehouse: Warehouse, target: str, pk: tuple[str, ...]
) -> str:
    """A compute-side relation with the primary keys already in the warehouse table."""
    cols = ", ".join(_ident(c) for c in pk)
    schema, name = target.split(".", 1)
    qualified = f"{_ident(schema)}.{_ident(name)}"
    if warehouse.capabilities.zero_copy_compute:
        return f"(select {cols} from {qualified})"
    keys_table = _work(target, "keys")
    arrow = warehouse.read_arrow(f"select {cols} from {qualified}")
    con.register("rh_existing_keys", arrow)
    try:
        con.execute(f"create or replace table {keys_table} as select * from rh_existing_keys")
    finally:
        con.unregister("rh_existing_keys")
    return keys_table


def _key_match(pk: tuple[str, ...]) -> str:
    return " and ".join(
        f"e.{_ident(c)} is not distinct from r.{_ident(c)}"
        if c in PROVENANCE
        else f"e.{_ident(c)} = r.{_ident(c)}"
        for c in pk
    )


def _keys_missing_from(
    con: duckdb.DuckDBPyConnection, existing: str, relation: str, pk: tuple[str, ...]
) -> int:
    """How many published keys (with where their rows came from) the rebuilt table lacks.

    The star schema is rebuilt from the whole raw history, so every published fact row has its
    twin in the rebuild unless the rows' keys changed: appending then would add the new
    versions beside the old ones, or skip new rows whose keys old rows hold.
    """
    return int(
        con.execute(
            f"select count(*) from {existing} e "
            f"where not exists (select 1 from {relation} r where {_key_match(pk)})"
        ).fetchall()[0][0]
    )


def _new_fact_rows(
    con: duckdb.DuckDBPyConnection,
    target: str,
    relation: str,
    existing: str,
    pk: tuple[str, ...],
) -> str:
    new = _work(target, "new")
    con.execute(
        f"create or replace table {new} as select r.* from {relation} r "
        f"where not exists (select 1 from {existing} e where {_key_match(pk)})"
    )
    return new


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]


def _scd2(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    dimension: str,
    relation: str,
    pk: tuple[str, ...],
    now: datetime,
    pseudonym_key: bytes | None = None,
) -> str:
    """The new SCD2 history of ``dimension`` as a compute table."""
    out = _work(dimension, "history")
    columns = _columns(con, relation)
    first = f"timestamp '{FIRST_VALID_FROM:%Y-%m-%d %H:%M:%S}'"
    at = f"timestamp '{now:%Y-%m-%d %H:%M:%S.%f}'"
    previous = warehouse.history_relation(history_table(dimension))
    if previous is None:
        con.execute(
            f"create or replace table {out} as select *, {first} as valid_from, "
            f"cast(null as timestamp) as valid_to, true as is_current from {relation}"
        )
        return out
    if pseudonym_key is not None and pseudonymise.is_analyst_facing(dimension):
        previous = pseudonymise.pseudonymised(
            previous, _columns(con, previous), pseudonym_key, keep_pseudonyms=True
        )
    excluded = set(SCD_DIMENSIONS[dimension]) | set(pk) | set(SCD_COLUMNS)
    prev_cols = set(_columns(con, previous))
    tracked = [c for c in columns if c not in excluded and c in prev_cols]
    key_match = " and ".join(f"c.{_ident(k)} = d.{_ident(k)}" for k in pk)
    differs = " or ".join(f"d.{_ident(c)} is distinct from c.{_ident(c)}" for c in tracked)
    first_key = _ident(pk[0])
    # Members that are new, or whose tracked attributes differ from their current version.
    changed = _work(dimension, "changed")
    con.execute(
        f"create or replace table {changed} as "
        f"select d.*, c.{first_key} is null as is_new_member from {relation} d "
        f"left join (select * from {previous} where is_current) c on {key_match} "
        f"where c.{first_key} is null" + (f" or {differs}" if differs else "")
    )
    ever = " and ".join(f"p.{_ident(k)} = d.{_ident(k)}" for k in pk)
    still = " and ".join(f"n.{_ident(k)} = p.{_ident(k)}" for k in pk)
    touched = " and ".join(f"x.{_ident(k)} = p.{_ident(k)}" for k in pk)
    closes = f"(exists (select 1 from {changed} x where {touched}) or n.{first_key} is null)"
    # A current version that stays current takes the member's measures of activity as they
    # are now (order count, last order): frozen at the version's opening, the history would
    # depend on how the same input was split into runs.
    measures = [c for c in SCD_DIMENSIONS[dimension] if c in columns and c in prev_cols]
    refreshed = "".join(
        f", case when p.is_current and not {closes} then n.{_ident(m)} else p.{_ident(m)} end "
        f"as {_ident(m)}"
        for m in measures
    )
    con.execute(
        f"create or replace table {out} as "
        # Previous versions; the current one closes if its member changed or disappeared.
        f"select p.* replace ("
        f"  case when p.is_current and {closes} then {at} else p.valid_to end as valid_to, "
        f"  p.is_current and not {closes} as is_current{refreshed}) "
        f"from {previous} p left join {relation} n on {still} "
        f"union all by name "
        # New versions: from the beginning of time for a new member, from now for a change.
        f"select d.* exclude (is_new_member), "
        f"case when d.is_new_member and not exists (select 1 from {previous} p where {ever}) "
        f"then {first} else {at} end as valid_from, "
        f"cast(null as timestamp) as valid_to, true as is_current from {changed} d"
    )
    return out
