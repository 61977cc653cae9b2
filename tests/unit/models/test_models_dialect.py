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


CLEANER_SAMPLES = [
    "WHITE HANGING HEART",
    "two  spaces",
    " padded ",
    "tab\there",
    "line\nbreak\r\n",
    "no\u00a0break\u00a0space",
    "vertical\u000btab",
    "a \u00a0\t b",
    "",
    "17850",
    "17850.0",
    "017850.00",
    "0",
    "000",
    "12.50",
    " 42 ",
    "0.0",
]


def test_text_cleaners_equal_their_unguarded_regular_expressions() -> None:
    """The guards only skip values the regular expressions would leave as they are."""
    con = duckdb.connect()
    install_duckdb_functions(con)
    got = con.sql(
        """
        select t,
               rh_collapse_spaces(t),
               regexp_replace(replace(t, chr(160), ' '), '\\s+', ' ', 'g'),
               rh_clean_id(t),
               regexp_replace(regexp_replace(trim(t), '\\.0+$', ''), '^0+([0-9])', '\\1')
        from unnest(?) as u(t)
        """,
        params=[CLEANER_SAMPLES],
    ).fetchall()
    for text, collapsed, collapsed_plain, cleaned, cleaned_plain in got:
        assert collapsed == collapsed_plain, repr(text)
        assert cleaned == cleaned_plain, repr(text)
    known = dict((row[0], (row[1], row[3])) for row in got)
    assert known["a \u00a0\t b"] == ("a b", "a \u00a0\t b")
    assert known["017850.00"][1] == "17850"
    assert known["000"][1] == "0"
    assert known["12.50"][1] == "12.50"
    assert con.sql("select rh_collapse_spaces(null), rh_clean_id(null)").fetchall() == [
        (None, None)
    ]
