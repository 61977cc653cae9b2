"""rh_surrogate_key on DuckDB: the first 60 bits of the MD5 digest, for any text."""

from __future__ import annotations

import hashlib

import duckdb

from retailhub.models.dialect import install_duckdb_functions


def test_surrogate_key_is_the_first_60_bits_of_the_md5() -> None:
    con = duckdb.connect()
    install_duckdb_functions(con)
    texts = ["", "a", "online|17850", "product|85123A", "geo|United Kingdom||||", "é€✓", "x" * 300]
    texts += [f"online_retail|{536000 + i}|{i % 9}" for i in range(2000)]
    got = con.sql("select t, rh_surrogate_key(t) from unnest(?) as u(t)", params=[texts]).fetchall()
    for text, key in got:
        assert key == int(hashlib.md5(text.encode()).hexdigest()[:15], 16), text
    assert con.sql("select rh_surrogate_key(null), rh_surrogate_key(42)").fetchall() == [
        (None, int(hashlib.md5(b"42").hexdigest()[:15], 16))
    ]
