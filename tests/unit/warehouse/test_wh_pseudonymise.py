"""Keyed pseudonyms: the SQL HMAC equals the standard HMAC-SHA256 (RFC 4231 known answers)."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest

from retailhub.errors import ConfigError
from retailhub.warehouse import pseudonymise as ps

# RFC 4231 test case 1 and 2 (key, data, HMAC-SHA256).
RFC4231 = [
    (b"\x0b" * 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        "what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_sql_hmac_matches_rfc_4231(key: bytes, data: str, expected: str) -> None:
    con = duckdb.connect()
    got = con.execute(
        f"select {ps.hmac_sql('v', key, 'customer_name')} from (select ? as v)", [data]
    ).fetchall()[0][0]
    assert got == expected
    assert ps.pseudonym(data, key) == expected


def test_long_keys_are_hashed_first_like_hmac() -> None:
    key = b"k" * 131
    con = duckdb.connect()
    got = con.execute(f"select {ps.hmac_sql(repr('x'), key, 'customer_name')}").fetchall()[0][0]
    assert got == hmac.new(key, b"x", hashlib.sha256).hexdigest()


def test_relation_keeps_other_columns_and_nulls() -> None:
    key = b"0123456789abcdef0123"
    con = duckdb.connect()
    con.execute(
        "create table c as select * from (values (1, 'Ann Lee', ' Ann@Example.COM ', 'UK'), "
        "(2, null, null, 'FR')) t (customer_key, customer_name, email, country)"
    )
    rel = ps.pseudonymised("c", ["customer_key", "customer_name", "email", "country"], key)
    rows = con.execute(f"select * from {rel} order by customer_key").fetchall()
    assert rows[0][0] == 1 and rows[0][3] == "UK"
    assert rows[0][1] == hmac.new(key, b"Ann Lee", hashlib.sha256).hexdigest()
    # e-mail addresses are trimmed and lower-cased first: one person, one pseudonym
    assert rows[0][2] == hmac.new(key, b"ann@example.com", hashlib.sha256).hexdigest()
    assert rows[1][1:3] == (None, None)


def test_personal_columns_by_name() -> None:
    cols = ["customer_name", "email", "contact_email", "phone_number", "product_name", "country"]
    assert ps.personal_columns(cols) == ["customer_name", "email", "contact_email", "phone_number"]


def test_key_comes_from_the_environment_and_must_be_long_enough() -> None:
    assert ps.key_from_env({}) is None
    assert ps.key_from_env({ps.KEY_ENV: "x" * 32}) == b"x" * 32
    with pytest.raises(ConfigError, match="too short"):
        ps.key_from_env({ps.KEY_ENV: "short"})


def test_keep_pseudonyms_hashes_clear_values_only() -> None:
    """An SCD2 history mixes versions from before the key (clear) and after (pseudonyms)."""
    key = b"0123456789abcdef-history"
    done = ps.pseudonym("Ann Lee", key)
    con = duckdb.connect()
    con.execute(
        "create table h as select * from (values (1, 'Ann Lee', ' ANN@X.ORG'), "
        f"(2, '{done}', NULL), (3, NULL, 'b@y.com')) as t(id, customer_name, email)"
    )
    relation = ps.pseudonymised("h", ["id", "customer_name", "email"], key, keep_pseudonyms=True)
    rows = con.execute(f"select * from {relation} order by id").fetchall()
    assert rows == [
        (1, done, ps.pseudonym("ann@x.org", key, "email")),
        (2, done, None),
        (3, None, ps.pseudonym("b@y.com", key, "email")),
    ]
