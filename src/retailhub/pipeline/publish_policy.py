"""What a publish adds on top of the tables a run built: keys, pseudonyms, increments, audit.

The publish step collects the run's tables into a :class:`PublishBatch`; before the
warehouse applies it, :func:`prepare` makes it production-shaped, the same way on every
engine:

1. **keys** from the model sidecars (primary keys, foreign keys to dimensions, dashboard
   indexes), handed to adapters that enforce them (:class:`SupportsKeys`);
2. **pseudonyms** — personal columns of analyst-facing tables (``core``, ``marts``) are
   replaced by a keyed hash when ``RETAILHUB_PSEUDONYM_KEY`` is set (the SCD2 histories'
   earlier versions too, should they be in clear from runs before the key); a warehouse that
   has an analyst role (``retailhub warehouse init``) refuses to publish them in clear;
3. **increments** — new fact rows only, SCD2 history for customers and products
   (:mod:`retailhub.pipeline.incremental`), unless a full refresh was asked for;
4. **audit** rows for every table, committed with the data.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from retailhub.errors import ConfigError
from retailhub.pipeline import incremental
from retailhub.warehouse import audit, pseudonymise
from retailhub.warehouse.base import PublishBatch, Warehouse
from retailhub.warehouse.keys import Index, SupportsKeys, TableKeys, keys_from_spec

log = logging.getLogger(__name__)

ROLES_TABLE = "meta.warehouse_roles"


def table_keys(models: Iterable[Mapping[str, Any]]) -> dict[str, TableKeys]:
    """Keys of every built model, by published table name (from the transform payload)."""
    keys = {}
    for m in models:
        schema = m.get("schema") or str(m["relation"]).split(".")[-2]
        table = keys_from_spec(m["name"], m.get("spec") or {}, schema)
        if m.get("primary_key"):  # a mart's grain
            table = dataclasses.replace(table, primary_key=tuple(m["primary_key"]))
        if m.get("indexes"):  # what dashboards filter a mart on
            table = dataclasses.replace(
                table, indexes=tuple(Index(tuple(columns)) for columns in m["indexes"])
            )
        keys[f"{schema}.{m['name']}"] = table
    return keys


def prepare(
    warehouse: Warehouse,
    batch: PublishBatch,
    models: Iterable[Mapping[str, Any]],
    rows: Mapping[str, int],
    *,
    run_id: str,
    now: Any,
    full_refresh: bool = False,
    environ: Mapping[str, str] | None = None,
) -> incremental.IncrementalSummary:
    """Rewrite ``batch`` in place for publishing; returns what the incremental step decided."""
    con = warehouse.compute
    keys = table_keys(models)
    pseudonymised = pseudonymise_batch(warehouse, batch, environ=environ)
    summary = incremental.prepare(
        con,
        warehouse,
        batch,
        keys,
        now=now,
        # rows of corrected files may keep their keys with other values: appending new keys
        # only would keep the old values, so the facts are replaced whole
        full_refresh=full_refresh or bool(batch.delete),
        pseudonym_key=pseudonymise.key_from_env(environ),
    )
    if isinstance(warehouse, SupportsKeys):
        warehouse.declare_keys(keys)
    counts: dict[str, int | None] = {**rows, **summary.rows}
    for target, relation in batch.append.items():
        if target not in counts:
            counts[target] = int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])
    audit.add_publish_entries(
        warehouse,
        batch,
        counts,
        run_id=run_id,
        full_refresh=full_refresh,
        incremental=summary.appended,
    )
    key = pseudonymise.key_from_env(environ)
    check = pseudonymise.key_check(key) if key is not None else audit.CLEAR
    # without a key, recorded only when leaving pseudonyms (health allowed it on purpose), so
    # that later runs without a key are not refused again
    if pseudonymised and (key is not None or audit.last_key_check(warehouse) not in (None, check)):
        batch.rows[audit.AUDIT_TABLE].append(
            audit.entry(
                "pseudonymise",
                ", ".join(pseudonymised),
                role=audit.db_role(warehouse),
                run_id=run_id,
                detail=audit.KEY_CHECK_PREFIX + check,
            )
        )
    return summary


def pseudonymise_batch(
    warehouse: Warehouse, batch: PublishBatch, *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Replace personal columns of analyst-facing tables by keyed hashes; returns the tables
    with personal columns (published in clear when there is no key)."""
    key = pseudonymise.key_from_env(environ)
    con = warehouse.compute
    touched = []
    for target, relation in list(batch.replace.items()):
        if not pseudonymise.is_analyst_facing(target):
            continue
        columns = [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]
        personal = pseudonymise.personal_columns(columns)
        if not personal:
            continue
        if key is None:
            if has_analyst_role(warehouse):
                raise ConfigError(
                    f"{target} has personal columns ({', '.join(personal)}) and this warehouse "
                    f"has an analyst role: set {pseudonymise.KEY_ENV} so they are published "
                    "pseudonymised",
                    key=pseudonymise.KEY_ENV,
                )
            log.warning(
                "%s: personal columns %s published in clear (set %s to pseudonymise them)",
                target,
                ", ".join(personal),
                pseudonymise.KEY_ENV,
            )
        else:
            batch.replace[target] = pseudonymise.pseudonymised(relation, columns, key)
        touched.append(target)
    return touched


def has_analyst_role(warehouse: Warehouse) -> bool:
    """Whether ``warehouse init`` created an analyst role (personal data must be hashed)."""
    if not warehouse.table_exists(ROLES_TABLE):
        return False
    res = warehouse.query(f"select count(*) from {ROLES_TABLE} where purpose = 'analyst'")
    return bool(res.rows and res.rows[0][0])
