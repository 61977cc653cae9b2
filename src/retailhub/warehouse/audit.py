"""The audit log: who changed the warehouse, when, how, and how many rows.

Every data operation — a table load, a full refresh, rows deleted, a backup, a restore, a
grant — becomes one row of ``meta.audit_log``. Publishing adds its rows to the publish batch,
so they commit together with the data they describe (and vanish with it on a rollback);
operations outside a publish call :func:`record`. On PostgreSQL the table belongs to the
administrator who ran ``retailhub warehouse init`` and the loader may only insert and read,
so a run cannot rewrite its own history.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from retailhub import os_user
from retailhub.warehouse.base import PublishBatch, Warehouse, files_predicate, sources_predicate

AUDIT_TABLE = "meta.audit_log"
OPERATIONS = (
    "load",
    "full_refresh",
    "replace",
    "upsert",
    "delete",
    "backup",
    "restore",
    "grant",
    "revoke",
    "pseudonymise",
)
#: The detail of a "pseudonymise" entry: the key check (pseudonymise.key_check) of its key.
KEY_CHECK_PREFIX = "key check "
#: The key check recorded when a run without a key went back to personal columns in clear.
CLEAR = "none (published in clear)"


def last_key_check(warehouse: Warehouse) -> str | None:
    """The key check recorded by the last publish that pseudonymised (or ``CLEAR`` after a
    run went back to clear values on purpose), if any."""
    if not warehouse.table_exists(AUDIT_TABLE):
        return None
    res = warehouse.query(
        f"select detail from {AUDIT_TABLE} where operation = 'pseudonymise' "
        "order by logged_at desc limit 1"
    )
    detail = str(res.rows[0][0] or "") if res.rows else ""
    return detail.removeprefix(KEY_CHECK_PREFIX) if detail.startswith(KEY_CHECK_PREFIX) else None


_COLUMNS = """
    logged_at timestamp not null,
    operation varchar not null,
    object_name varchar not null,
    rows_affected bigint,
    db_role varchar,
    os_user varchar,
    client_host varchar,
    run_id varchar,
    detail varchar
"""


def create_statement(engine: str = "duckdb") -> str:
    return f"create table if not exists {AUDIT_TABLE} ({_COLUMNS.strip()})"


def ensure_table(warehouse: Warehouse) -> None:
    if not warehouse.table_exists(AUDIT_TABLE):
        warehouse.execute(create_statement(warehouse.engine))


def db_role(warehouse: Warehouse) -> str:
    """The database role the warehouse connection acts as (``duckdb`` for DuckDB)."""
    try:
        res = warehouse.query("select current_user")
        return str(res.rows[0][0])
    except Exception:
        return "unknown"


def entry(
    operation: str,
    object_name: str,
    rows: int | None = None,
    *,
    role: str | None = None,
    run_id: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown audit operation {operation!r}")
    return {
        "logged_at": datetime.now(UTC).replace(tzinfo=None),
        "operation": operation,
        "object_name": object_name,
        "rows_affected": rows,
        "db_role": role,
        "os_user": os_user.name(),
        "client_host": socket.gethostname(),
        "run_id": run_id,
        "detail": detail,
    }


def record(warehouse: Warehouse, entries: list[dict[str, Any]]) -> None:
    """Write entries now (operations that are not part of a publish)."""
    if not entries:
        return
    ensure_table(warehouse)
    role = db_role(warehouse)
    warehouse.insert_rows(
        AUDIT_TABLE, [{**e, "db_role": e.get("db_role") or role} for e in entries]
    )


def add_publish_entries(
    warehouse: Warehouse,
    batch: PublishBatch,
    rows: dict[str, int | None],
    *,
    run_id: str | None,
    full_refresh: bool = False,
    incremental: set[str] | None = None,
) -> None:
    """Add one audit row per table of ``batch`` to the batch itself (atomic with the data).

    ``rows`` maps a target table to its row count where the caller knows it; ``incremental``
    names the tables whose ``append`` holds only new rows of an existing table.
    """
    ensure_table(warehouse)
    role = db_role(warehouse)
    entries = []
    deletes = [
        (target, files_predicate(files), _files_detail(files))
        for target, files in batch.delete.items()
        if files
    ] + [
        (
            target,
            sources_predicate(sources),
            "superseded by this run's rows of " + ", ".join(sources),
        )
        for target, sources in batch.supersede.items()
        if sources
    ]
    for target, predicate, detail in deletes:
        if not warehouse.table_exists(target):
            continue
        count = warehouse.query(f"select count(*) from {target} where {predicate}").rows[0][0]
        if count or target in batch.delete:
            entries.append(
                entry("delete", target, int(count), role=role, run_id=run_id, detail=detail)
            )
    for target in batch.append:
        detail = "new rows of an incremental run" if target in (incremental or set()) else None
        entries.append(
            entry("load", target, rows.get(target), role=role, run_id=run_id, detail=detail)
        )
    for target in batch.replace:
        op = "full_refresh" if full_refresh else "replace"
        entries.append(entry(op, target, rows.get(target), role=role, run_id=run_id))
    for target, records in batch.rows.items():
        if target != AUDIT_TABLE and records:
            entries.append(entry("load", target, len(records), role=role, run_id=run_id))
    batch.rows.setdefault(AUDIT_TABLE, []).extend(entries)


def _files_detail(files: list[tuple[str, str]]) -> str:
    shown = ", ".join(uri for _source, uri in files[:3])
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return f"rows of the earlier version of corrected files: {shown}{more}"
