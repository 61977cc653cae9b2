"""Roles and grants of a PostgreSQL warehouse, created idempotently by ``warehouse init``.

Two login roles, neither a superuser:

* **loader** — what runs use: USAGE and CREATE on the retailhub schemas, owner of the tables
  it publishes (so it can swap them), INSERT and SELECT only on ``meta.audit_log``;
* **analyst** — read-only: USAGE on ``core`` and ``marts`` and SELECT on their tables (now
  and, through default privileges, in future). Without USAGE on ``raw``, ``quarantine``,
  ``meta`` and the staging schema it cannot reach raw personal data, rejected rows or the
  ledger, whatever table-level grants might exist. Init revokes PUBLIC's default TEMPORARY
  privilege on the database, so it cannot create temporary tables either.

The administrator running init owns the schemas and the audit log, so the loader can neither
drop a schema nor rewrite the audit trail. Role names are recorded in ``meta.warehouse_roles``
so that a publish can grant the analyst SELECT on tables that are new to the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from retailhub.errors import UsageError, WarehouseError
from retailhub.warehouse import audit, pseudonymise
from retailhub.warehouse.base import SCHEMAS
from retailhub.warehouse.ledger_schema import LEDGER_TABLES, index_statements
from retailhub.warehouse.pg_types import qualified, quote_ident
from retailhub.warehouse.postgres import LOCK_INIT, LOCK_NAMESPACE, STAGING_SCHEMA, copy_rows

if TYPE_CHECKING:
    import psycopg

ROLES_TABLE = "meta.warehouse_roles"
LOADER_SCHEMAS = (*SCHEMAS, STAGING_SCHEMA)
ANALYST_SCHEMAS = ("core", "marts")
ROLE_ATTRIBUTES = "login nosuperuser nocreatedb nocreaterole noreplication nobypassrls"


@dataclass(frozen=True)
class RoleNames:
    loader: str = "retailhub_loader"
    analyst: str = "retailhub_analyst"


@dataclass
class InitReport:
    created_roles: list[str]
    created_schemas: list[str]
    grants: list[str]
    #: analyst-facing tables the analyst may not read yet: they hold personal values in clear
    withheld: list[str] = field(default_factory=list)


def init_warehouse(
    conn: psycopg.Connection[Any], roles: RoleNames = RoleNames(), *, run_id: str | None = None
) -> InitReport:
    """Create roles, schemas, ledger tables and grants; safe to run any number of times."""
    import psycopg

    if roles.loader == roles.analyst:
        raise UsageError("the loader and analyst roles must differ")
    _check_admin(conn)
    report = InitReport([], [], [])
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_INIT))
            db = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
            admin = conn.execute("select current_user").fetchone()[0]  # type: ignore[index]
            for role in (roles.loader, roles.analyst):
                if _ensure_role(conn, role):
                    report.created_roles.append(role)
            _grant(conn, report, f"connect, temporary on database {quote_ident(db)}", roles.loader)
            _grant(conn, report, f"connect on database {quote_ident(db)}", roles.analyst)
            # Every role gets TEMP through PUBLIC by default: the analyst could create tables
            # (temporary ones, but writes all the same). Only the loader keeps it, granted above.
            conn.execute(f"revoke temporary on database {quote_ident(db)} from public")
            for schema in LOADER_SCHEMAS:
                if not _exists(conn, "select 1 from pg_namespace where nspname = %s", schema):
                    conn.execute(f"create schema {quote_ident(schema)}")
                    report.created_schemas.append(schema)
                conn.execute(f"revoke all on schema {quote_ident(schema)} from public")
                _grant(conn, report, f"usage, create on schema {quote_ident(schema)}", roles.loader)
            _create_tables(conn)
            _hand_tables_to_loader(conn, roles.loader, admin)
            _protect_audit_log(conn, report, roles.loader)
            for schema in ANALYST_SCHEMAS:
                s = quote_ident(schema)
                _grant(conn, report, f"usage on schema {s}", roles.analyst)
                _grant(conn, report, f"select on all tables in schema {s}", roles.analyst)
                conn.execute(
                    f"alter default privileges for role {quote_ident(roles.loader)} in schema {s} "
                    f"grant select on tables to {quote_ident(roles.analyst)}"
                )
            _withhold_clear_personal_data(conn, report, roles.analyst)
            _record_roles(conn, roles)
            conn.execute(f"grant select on {qualified(ROLES_TABLE)} to {quote_ident(roles.loader)}")
            entries = (
                [
                    audit.entry(
                        "grant", f"role {r}", role=admin, run_id=run_id, detail="created role"
                    )
                    for r in report.created_roles
                ]
                + [
                    audit.entry("grant", g.split(" to ")[0], role=admin, run_id=run_id, detail=g)
                    for g in report.grants
                ]
                + [
                    audit.entry(
                        "revoke",
                        table,
                        role=admin,
                        run_id=run_id,
                        detail=f"select from {roles.analyst}: personal values in clear",
                    )
                    for table in report.withheld
                ]
                + [
                    audit.entry(
                        "revoke",
                        f"database {db}",
                        role=admin,
                        run_id=run_id,
                        detail="temporary from public (the loader keeps it by its own grant)",
                    )
                ]
            )
            copy_rows(conn, audit.AUDIT_TABLE, entries)
    except psycopg.Error as exc:
        raise WarehouseError(f"warehouse init failed and was rolled back: {exc}") from None
    return report


def analyst_grants(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Schema -> ``"<privilege> to <role>"`` clauses for tables a publish creates or replaces."""
    row = conn.execute("select has_table_privilege(to_regclass(%s), 'select')", (ROLES_TABLE,))
    allowed = row.fetchone()
    if not allowed or not allowed[0]:
        return {}
    rows = conn.execute(
        f"select role_name from {qualified(ROLES_TABLE)} where purpose = 'analyst'"
    ).fetchall()
    return {schema: [f"select to {quote_ident(r[0])}" for r in rows] for schema in ANALYST_SCHEMAS}


def is_superuser(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()
    return bool(row and row[0])


def _check_admin(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        "select rolsuper, rolcreaterole from pg_roles where rolname = current_user"
    ).fetchone()
    if not row or not (row[0] or row[1]):
        raise UsageError(
            "'retailhub warehouse init' creates roles: connect as a superuser or a role with "
            "CREATEROLE that owns the database (e.g. --warehouse postgresql://postgres@host/db)"
        )


def _exists(conn: psycopg.Connection[Any], sql: str, *params: Any) -> bool:
    return conn.execute(sql, params).fetchone() is not None


def _ensure_role(conn: psycopg.Connection[Any], role: str) -> bool:
    row = conn.execute("select rolsuper from pg_roles where rolname = %s", (role,)).fetchone()
    if row is None:
        conn.execute(f"create role {quote_ident(role)} {ROLE_ATTRIBUTES}")
        return True
    if row[0]:
        raise UsageError(
            f"role {role} exists and is a superuser; retailhub's roles must not be: "
            "choose another name or remove SUPERUSER"
        )
    return False


def _grant(conn: psycopg.Connection[Any], report: InitReport, what: str, role: str) -> None:
    conn.execute(f"grant {what} to {quote_ident(role)}")
    report.grants.append(f"{what} to {role}")


def _create_tables(conn: psycopg.Connection[Any]) -> None:
    for table, cols in LEDGER_TABLES.items():
        conn.execute(f"create table if not exists {table} ({cols.strip()})")
    conn.execute(audit.create_statement("postgres"))
    conn.execute(
        f"create table if not exists {ROLES_TABLE} (purpose varchar primary key, "
        "role_name varchar not null, recorded_at timestamp not null default now())"
    )
    for statement in index_statements():
        conn.execute(statement)


def _hand_tables_to_loader(conn: psycopg.Connection[Any], loader: str, admin: str) -> None:
    """The loader owns every table it publishes or writes, so swaps and attaches work."""
    keep = {audit.AUDIT_TABLE, ROLES_TABLE}
    rows = conn.execute(
        "select n.nspname || '.' || c.relname, c.relkind, pg_get_userbyid(c.relowner) "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'S')",
        (list(LOADER_SCHEMAS),),
    ).fetchall()
    for name, kind, owner in rows:
        wanted = admin if name in keep else loader
        if owner != wanted:
            keyword = {"v": "view", "m": "materialized view", "S": "sequence"}.get(kind, "table")
            conn.execute(f"alter {keyword} {qualified(name)} owner to {quote_ident(wanted)}")


def _protect_audit_log(conn: psycopg.Connection[Any], report: InitReport, loader: str) -> None:
    table = qualified(audit.AUDIT_TABLE)
    conn.execute(f"revoke all on {table} from {quote_ident(loader)}")
    _grant(conn, report, f"select, insert on {table}", loader)
    conn.execute(_AUDIT_STAMP_FUNCTION)
    conn.execute(
        f"create or replace trigger audit_log_stamp before insert on {table} "
        "for each row execute function meta.rh_audit_stamp()"
    )


# The loader may insert audit rows, so it could write another role's name or an old date into
# them: the server sets who and when for every role but the log's owner (who could rewrite the
# table anyway, and whose restore brings back the dump's rows as they were recorded).
# Every name is pg_catalog's, and so is the search path (pg_temp last): the loader may create
# temporary tables and objects in meta, and must not shadow pg_class or pg_has_role with them.
_AUDIT_STAMP_FUNCTION = """
create or replace function meta.rh_audit_stamp() returns trigger language plpgsql
set search_path = pg_catalog, pg_temp as $$
begin
    if not pg_catalog.pg_has_role(
        current_user,
        (select c.relowner from pg_catalog.pg_class c where c.oid = tg_relid),
        'member'
    ) then
        new.db_role := current_user;
        new.logged_at := pg_catalog.clock_timestamp() at time zone 'utc';
    end if;
    return new;
end
$$
"""


def _withhold_clear_personal_data(
    conn: psycopg.Connection[Any], report: InitReport, analyst: str
) -> None:
    """Take SELECT back from the analyst on tables that hold personal values in clear.

    Runs published before the analyst role existed may have written names and e-mails in
    clear (a publish only refuses that once the role exists). The next run, which must then
    have RETAILHUB_PSEUDONYM_KEY, replaces those tables pseudonymised and grants the analyst
    SELECT on them again.
    """
    rows = conn.execute(
        "select n.nspname || '.' || c.relname, array_agg(a.attname::text order by a.attnum) "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
        "where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm') "
        "group by 1 order by 1",
        (list(ANALYST_SCHEMAS),),
    ).fetchall()
    for table, columns in rows:
        probe = pseudonymise.clear_values_sql(qualified(table), columns)
        if probe is not None and conn.execute(probe).fetchone() is not None:
            conn.execute(f"revoke select on {qualified(table)} from {quote_ident(analyst)}")
            report.withheld.append(table)


def _record_roles(conn: psycopg.Connection[Any], roles: RoleNames) -> None:
    for purpose, name in (("loader", roles.loader), ("analyst", roles.analyst)):
        conn.execute(
            f"insert into {qualified(ROLES_TABLE)} (purpose, role_name) values (%s, %s) "
            "on conflict (purpose) do update set role_name = excluded.role_name, "
            "recorded_at = now()",
            (purpose, name),
        )


@runtime_checkable
class SupportsRoles(Protocol):
    """A warehouse that has database roles (``retailhub warehouse init`` creates them)."""

    def init_roles(self, roles: RoleNames) -> InitReport: ...
