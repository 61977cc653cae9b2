"""What a DBA set on a published PostgreSQL table, carried over to the table that replaces it.

A publish swaps in a freshly built table and drops the old one, and with the old table go its
privileges, row-level security policies and comments. Dropping them silently would hand an
analyst rows a policy hid from them, or take a BI role's column grants away, so the swap reads
them from the old table (``read``) and applies them to the new one (``apply``) in the same
transaction. A policy whose expression names a column the new table lacks makes the publish
fail (rolled back) rather than drop the access control; a grant or comment on a column that is
gone is dropped with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retailhub.warehouse.base import sql_literal
from retailhub.warehouse.pg_types import qualified

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_COMMANDS = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}


@dataclass
class Carried:
    """One table's grants (``"select to role"``, ``"select (col) to role"``), row security,
    policies (CREATE POLICY text with ``{table}`` for the table) and comments."""

    grants: list[str] = field(default_factory=list)
    row_security: bool = False
    force_row_security: bool = False
    policies: list[str] = field(default_factory=list)
    comment: str | None = None
    column_comments: dict[str, str] = field(default_factory=dict)


def read(conn: psycopg.Connection[Any], target: str) -> Carried | None:
    """What ``target`` carries (None if it does not exist); its owner's own rights are not
    grants to carry (the new table has its owner)."""
    row = conn.execute(
        "select c.oid, c.relowner, c.relrowsecurity, c.relforcerowsecurity, "
        "obj_description(c.oid, 'pg_class') from pg_class c where c.oid = to_regclass(%s)",
        (qualified(target),),
    ).fetchone()
    if row is None:
        return None
    oid, owner, row_security, force, comment = row
    grants = conn.execute(
        "select case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end, "
        "a.privilege_type from pg_class c, aclexplode(c.relacl) a "
        "left join pg_roles r on r.oid = a.grantee "
        "where c.oid = %s and a.grantee <> %s",
        (oid, owner),
    ).fetchall()
    column_grants = conn.execute(
        "select case when x.grantee = 0 then 'public' else quote_ident(r.rolname) end, "
        "x.privilege_type, quote_ident(a.attname) from pg_attribute a, "
        "aclexplode(a.attacl) x left join pg_roles r on r.oid = x.grantee "
        "where a.attrelid = %s and a.attnum > 0 and not a.attisdropped "
        "and a.attacl is not null and x.grantee <> %s",
        (oid, owner),
    ).fetchall()
    policies = conn.execute(
        "select quote_ident(p.polname), p.polpermissive, p.polcmd, "
        "(select coalesce(string_agg(case when x = 0 then 'public' "
        "else quote_ident(pg_get_userbyid(x)) end, ', '), 'public') from unnest(p.polroles) x), "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
        "from pg_policy p where p.polrelid = %s order by p.polname",
        (oid,),
    ).fetchall()
    column_comments = conn.execute(
        "select quote_ident(a.attname), col_description(a.attrelid, a.attnum) "
        "from pg_attribute a where a.attrelid = %s and a.attnum > 0 and not a.attisdropped "
        "and col_description(a.attrelid, a.attnum) is not null",
        (oid,),
    ).fetchall()
    return Carried(
        grants=[f"{priv} to {grantee}" for grantee, priv in grants]
        + [f"{priv} ({column}) to {grantee}" for grantee, priv, column in column_grants],
        row_security=bool(row_security),
        force_row_security=bool(force),
        policies=[_policy(*p) for p in policies],
        comment=comment,
        column_comments=dict(column_comments),
    )


def apply(conn: psycopg.Connection[Any], target: str, carried: Carried) -> None:
    """Give the new ``target`` what the old one carried (grants through ``grant``)."""
    table = qualified(target)
    present = _columns(conn, target)
    if carried.row_security:
        conn.execute(f"alter table {table} enable row level security")
    if carried.force_row_security:
        conn.execute(f"alter table {table} force row level security")
    for policy in carried.policies:
        conn.execute(policy.format(table=table))
    if carried.comment is not None:
        conn.execute(f"comment on table {table} is {sql_literal(carried.comment)}")
    for column, text in carried.column_comments.items():
        if column in present:
            conn.execute(f"comment on column {table}.{column} is {sql_literal(text)}")
        else:
            log.warning("%s: column %s is gone from the new table, and its comment", target, column)
    grant(conn, target, carried.grants, present)


def grant(
    conn: psycopg.Connection[Any],
    target: str,
    grants: list[str],
    present: set[str] | None = None,
) -> None:
    """Run each ``"priv to role"`` / ``"priv (col) to role"`` on ``target``; a column grant
    only where the column still is (a warning names what is dropped)."""
    for clause in grants:
        priv, _, grantee = clause.partition(" to ")
        if priv.endswith(")"):
            if present is None:
                present = _columns(conn, target)
            column = priv[priv.index("(") + 1 : -1]
            if column not in present:
                log.warning(
                    "%s: column %s is gone from the new table, and with it %s's grant on it",
                    target,
                    column,
                    grantee,
                )
                continue
        conn.execute(f"grant {priv} on {qualified(target)} to {grantee}")


def _columns(conn: psycopg.Connection[Any], target: str) -> set[str]:
    rows = conn.execute(
        "select quote_ident(attname) from pg_attribute where attrelid = to_regclass(%s) "
        "and attnum > 0 and not attisdropped",
        (qualified(target),),
    ).fetchall()
    return {r[0] for r in rows}


def _policy(
    name: str, permissive: bool, command: str, roles: str, using: str | None, check: str | None
) -> str:
    text = (
        f"create policy {name} on {{table}} as {'permissive' if permissive else 'restrictive'} "
        f"for {_COMMANDS.get(command, 'all')} to {roles}"
    )
    if using is not None:
        text += f" using ({using})"
    if check is not None:
        text += f" with check ({check})"
    return text.replace("{", "{{").replace("}", "}}").replace("{{table}}", "{table}")
