"""Pseudonymise personal columns of analyst-facing tables with a keyed hash (HMAC-SHA256).

Analysts need to count, join and group customers, not to read their names or addresses. A
keyed hash keeps all of that (the same person always gets the same pseudonym, in every table
and every run) while a reader without the key cannot reverse it or confirm a guess, which a
plain hash would allow. The key comes from ``RETAILHUB_PSEUDONYM_KEY`` only; the raw values
stay in the restricted ``raw`` and ``quarantine`` schemas.

The HMAC is computed inside DuckDB (``sha256`` over the key pads and the UTF-8 value), so it
runs vectorised over millions of rows; :func:`pseudonym` is the same function in Python, for
tests and for looking up one person's pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence

KEY_ENV = "RETAILHUB_PSEUDONYM_KEY"
ANALYST_SCHEMAS = ("core", "marts")
MIN_KEY_BYTES = 16
# Column names that hold a person's name or an e-mail-like value.
PERSONAL = re.compile(
    r"^(customer_name|contact_name|person_name|full_name|first_name|last_name|"
    r"(.*_)?e_?mail(_.*)?|(.*_)?phone(_.*)?)$"
)
_EMAIL = re.compile(r"e_?mail")
_BLOCK = 64
#: What a pseudonym looks like (hex SHA-256), the same regular expression in DuckDB and
#: PostgreSQL: a value that does not match it is a value in clear.
PSEUDONYM_PATTERN = "^[0-9a-f]{64}$"


def key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The pseudonymisation key, or None when it is not set."""
    env = os.environ if environ is None else environ
    value = env.get(KEY_ENV)
    if not value:
        return None
    key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        from retailhub.errors import ConfigError

        raise ConfigError(
            f"{KEY_ENV} is too short: use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. the output of 'openssl rand -hex 32')",
            key=KEY_ENV,
        )
    return key


def key_check(key: bytes) -> str:
    """A short keyed hash of a fixed text: tells two keys apart, reveals nothing of either.

    Recorded in the audit log with every pseudonymising publish, so that a run with another
    key (the staging key in production, a typo) is refused instead of giving every customer
    a second pseudonym and a second history.
    """
    return hmac.new(key, b"retailhub pseudonym key check", hashlib.sha256).hexdigest()[:16]


def personal_columns(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if PERSONAL.match(c.lower())]


def _normalise_sql(column_sql: str, column: str) -> str:
    return f"lower(trim({column_sql}))" if _EMAIL.search(column.lower()) else f"trim({column_sql})"


def _normalise(value: str, column: str) -> str:
    return value.strip().lower() if _EMAIL.search(column.lower()) else value.strip()


def pseudonym(value: str | None, key: bytes, column: str = "customer_name") -> str | None:
    """HMAC-SHA256 of the normalised value, hex (what the SQL expression computes)."""
    if value is None:
        return None
    return hmac.new(key, _normalise(value, column).encode(), hashlib.sha256).hexdigest()


def hmac_sql(column_sql: str, key: bytes, column: str) -> str:
    """A DuckDB expression computing :func:`pseudonym` of ``column_sql`` (NULL stays NULL)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    value = _normalise_sql(f"cast({column_sql} as varchar)", column)
    return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({value}))))"


def pseudonymised(
    relation: str, columns: Sequence[str], key: bytes, *, keep_pseudonyms: bool = False
) -> str:
    """A relation (subquery) equal to ``relation`` with its personal columns pseudonymised.

    ``keep_pseudonyms`` keeps a value that already is a pseudonym, for tables that carry
    earlier runs' rows — the SCD2 histories — written before the key was set: their old
    versions hold names in clear, their later ones pseudonyms, and hashing every value again
    would turn the pseudonyms into hashes of hashes.
    """
    personal = personal_columns(columns)
    if not personal:
        return relation

    def value(c: str) -> str:
        hashed = hmac_sql(_q(c), key, c)
        if not keep_pseudonyms:
            return hashed
        return (
            f"case when regexp_matches(cast({_q(c)} as varchar), '{PSEUDONYM_PATTERN}') "
            f"then {_q(c)} else {hashed} end"
        )

    replaced = ", ".join(f"{value(c)} as {_q(c)}" for c in personal)
    return f"(select * replace ({replaced}) from {relation})"


def clear_values_sql(table: str, columns: Sequence[str]) -> str | None:
    """PostgreSQL query returning a row when ``table`` holds a personal value in clear; None
    when it has no personal column."""
    personal = personal_columns(columns)
    if not personal:
        return None
    clear = " or ".join(f"{_q(c)}::text !~ '{PSEUDONYM_PATTERN}'" for c in personal)
    return f"select 1 from {table} where {clear} limit 1"


def is_analyst_facing(table: str) -> bool:
    return table.split(".", 1)[0] in ANALYST_SCHEMAS


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
