"""The sources layer on the real public datasets in shared/datasets, read in place.

Counts and totals are the known answers documented in each dataset's SOURCE.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from retailhub.config.sources import parse_source_config
from retailhub.errors import SourceError
from retailhub.sources import SourceState, build_source, get_layout, land

pytestmark = pytest.mark.slow

SUPERSTORE_KAGGLE = "superstore/variant-kaggle-2014-2017-cp1252/Sample - Superstore.csv"


def _land_and_stage(datasets_dir: Path, name: str, raw: dict, con=None, state=None):
    """Land one source into raw_<name> and return (connection, staged relation SQL, landed)."""
    con = con or duckdb.connect()
    cfg = parse_source_config(name, raw)
    src = build_source(cfg, datasets_dir)
    landed = land(con, src, src.discover(state or SourceState()), f"raw_{name}")
    described = con.sql(f"DESCRIBE raw_{name}").fetchall()
    sql = get_layout(cfg.layout).staging_sql(
        f"raw_{name}",
        [r[0] for r in described],
        cfg.columns,
        cfg.date_format,
        source=name,
        source_types={r[0]: r[1] for r in described},
    )
    con.execute(f"CREATE TABLE stg_{name} AS {sql}")
    return con, landed


def _one(con, sql: str):
    return con.sql(sql).fetchall()[0]


def test_online_retail_305_daily_files(datasets_dir) -> None:
    raw = {"type": "csv", "layout": "online_retail", "path": "online-retail/by-day/*.csv"}
    con, landed = _land_and_stage(datasets_dir, "retail", raw)
    assert len(landed) == 305
    assert sum(u.rows for u in landed) == 541_909
    assert _one(con, "SELECT count(*), count(DISTINCT _source_file) FROM stg_retail") == (
        541_909,
        305,
    )
    assert _one(con, "SELECT count(*) FROM stg_retail WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT count(*) FROM stg_retail WHERE customer_id IS NULL") == (135_080,)
    assert _one(con, "SELECT count(*) FROM stg_retail WHERE invoice_no LIKE 'C%'") == (9_288,)
    assert _one(con, "SELECT count(*) FROM stg_retail WHERE unit_price < 0") == (2,)
    assert _one(con, "SELECT count(*) FROM stg_retail WHERE description IS NULL") == (1_454,)
    assert _one(con, "SELECT min(invoice_at), max(invoice_at) FROM stg_retail") == (
        dt.datetime(2010, 12, 1, 8, 26),
        dt.datetime(2011, 12, 9, 12, 50),
    )
    assert _one(
        con,
        "SELECT customer_id FROM stg_retail "
        "WHERE _line = 1 AND _source_file LIKE '%2010-12-01.csv'",
    ) == ("17850",)
    # the file name is the calendar day of every row in it
    assert _one(
        con,
        "SELECT count(*) FROM stg_retail WHERE strftime(invoice_at, '%Y-%m-%d') "
        "<> regexp_extract(_source_file, '(\\d{4}-\\d{2}-\\d{2})\\.csv$', 1)",
    ) == (0,)


def test_online_retail_second_discovery_sees_only_new_files(datasets_dir) -> None:
    src = build_source(
        parse_source_config(
            "retail",
            {"type": "csv", "layout": "online_retail", "path": "online-retail/by-day/*.csv"},
        ),
        datasets_dir,
    )
    units = src.discover(SourceState())
    known = {u.checksum for u in units[:300] if u.checksum}
    fresh = src.discover(SourceState(ingested_checksums=known))
    assert [Path(u.uri).name for u in fresh] == [Path(u.uri).name for u in units[300:]]
    assert Path(fresh[-1].uri).name == "2011-12-09.csv"


def test_superstore_primary_bom_crlf(datasets_dir) -> None:
    raw = {"type": "csv", "layout": "superstore", "path": "superstore/Sample - Superstore.csv"}
    con, (unit,) = _land_and_stage(datasets_dir, "ss", raw)
    assert unit.rows == 9_994
    assert _one(con, "SELECT count(*) FROM stg_ss WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT round(sum(sales), 4), round(sum(profit), 4) FROM stg_ss") == (
        2_297_200.8603,
        286_397.0217,
    )
    assert _one(con, "SELECT min(order_date), max(order_date) FROM stg_ss") == (
        dt.date(2016, 1, 3),
        dt.date(2019, 12, 30),
    )
    assert _one(con, "SELECT order_date, ship_date FROM stg_ss WHERE row_id = 1") == (
        dt.date(2018, 11, 8),
        dt.date(2018, 11, 11),
    )
    assert _one(con, "SELECT count(*) FROM stg_ss WHERE postal_code IS NULL") == (11,)
    assert _one(con, "SELECT count(*) FROM stg_ss WHERE length(postal_code) = 4") == (438,)
    assert _one(
        con, "SELECT count(*) FROM stg_ss WHERE product_name LIKE '%' || chr(160) || '%'"
    ) == (225,)


def test_superstore_cp1252_variant_read_in_place(datasets_dir) -> None:
    raw = {"type": "csv", "layout": "superstore", "path": SUPERSTORE_KAGGLE, "encoding": "cp1252"}
    con, (unit,) = _land_and_stage(datasets_dir, "ssk", raw)
    assert unit.rows == 9_994
    assert unit.uri == SUPERSTORE_KAGGLE  # as the (project-relative) pattern names it
    assert _one(con, "SELECT count(*) FROM stg_ssk WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT round(sum(sales), 4), round(sum(profit), 4) FROM stg_ssk") == (
        2_297_200.8603,
        286_397.0217,
    )
    assert _one(con, "SELECT min(order_date), max(order_date) FROM stg_ssk") == (
        dt.date(2014, 1, 3),
        dt.date(2017, 12, 30),
    )
    assert _one(con, "SELECT order_id, order_date FROM stg_ssk WHERE row_id = 1") == (
        "CA-2016-152156",
        dt.date(2016, 11, 8),
    )
    assert _one(con, "SELECT count(*) FROM stg_ssk WHERE postal_code IS NULL") == (0,)
    assert _one(con, "SELECT count(*) FROM stg_ssk WHERE length(postal_code) = 4") == (449,)
    # Windows-1252 bytes decoded: every A0 byte becomes U+00A0 (all are in product names; the
    # file holds 427 of them - SOURCE.md says 419), E9 is é
    a0_bytes = (datasets_dir / SUPERSTORE_KAGGLE).read_bytes().count(b"\xa0")
    assert a0_bytes == 427
    nbsp = (
        "SELECT sum(length(product_name) - length(replace(product_name, chr(160), ''))) "
        "FROM stg_ssk"
    )
    assert _one(con, nbsp) == (a0_bytes,)
    assert _one(con, "SELECT count(*) > 0 FROM stg_ssk WHERE product_name LIKE '%é%'") == (True,)


def test_superstore_cp1252_as_utf8_fails_naming_file_offset_and_key(datasets_dir) -> None:
    raw = {"type": "csv", "layout": "superstore", "path": SUPERSTORE_KAGGLE}
    with pytest.raises(SourceError) as err:
        _land_and_stage(datasets_dir, "ssk", raw)
    msg = str(err.value)
    assert "Sample - Superstore.csv" in msg and "variant-kaggle" in msg
    assert "not valid utf-8 at byte" in msg and "line " in msg
    assert "`encoding:`" in msg
    offset = err.value.context["offset"]
    data = (datasets_dir / SUPERSTORE_KAGGLE).read_bytes()
    assert data[offset] >= 0x80  # the first non-UTF-8 byte is really there
    data[:offset].decode("utf-8")  # and everything before it decodes


def test_two_superstore_files_feed_one_dataset(datasets_dir) -> None:
    con = duckdb.connect()
    _land_and_stage(
        datasets_dir,
        "a",
        {"type": "csv", "layout": "superstore", "path": "superstore/Sample - Superstore.csv"},
        con,
    )
    _land_and_stage(
        datasets_dir,
        "b",
        {"type": "csv", "layout": "superstore", "path": SUPERSTORE_KAGGLE, "encoding": "cp1252"},
        con,
    )
    union = "SELECT * FROM stg_a UNION ALL BY NAME SELECT * FROM stg_b"
    assert _one(con, f"SELECT count(*), round(sum(sales), 4) FROM ({union})") == (
        19_988,
        4_594_401.7206,
    )
    assert _one(con, f"SELECT count(DISTINCT _source) FROM ({union})") == (2,)


def test_customer_behaviour_kaggle_file(datasets_dir) -> None:
    raw = {"type": "csv", "layout": "customer_behaviour", "path": "customer-behavior/*.csv"}
    con, (unit,) = _land_and_stage(datasets_dir, "cb", raw)
    assert unit.rows == 3_900
    assert _one(con, "SELECT count(*) FROM stg_cb WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT count(DISTINCT customer_id), min(age) >= 18 FROM stg_cb") == (
        3_900,
        True,
    )
    assert _one(con, "SELECT min(purchase_amount), max(purchase_amount) FROM stg_cb") == (
        20.0,
        100.0,
    )
    assert _one(con, "SELECT min(review_rating), max(review_rating) FROM stg_cb") == (2.5, 5.0)
    assert _one(
        con, "SELECT count(*) FROM stg_cb WHERE discount_applied IS DISTINCT FROM promo_code_used"
    ) == (0,)
    assert _one(
        con, "SELECT count(DISTINCT purchase_frequency), count(DISTINCT location) FROM stg_cb"
    ) == (7, 50)
    assert _one(con, "SELECT count(*) FROM stg_cb WHERE gender = 'Male'") == (2_652,)
    assert _one(con, "SELECT count(activity_date) FROM stg_cb") == (0,)


def test_olist_products_without_overrides(datasets_dir) -> None:
    raw = {
        "type": "csv",
        "layout": "product_catalog",
        "path": "product-catalog/olist/olist_products_dataset.csv",
    }
    con, (unit,) = _land_and_stage(datasets_dir, "olist", raw)
    assert unit.rows == 32_951
    assert _one(con, "SELECT count(*) FROM stg_olist WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT count(DISTINCT product_id) FROM stg_olist") == (32_951,)
    assert _one(con, "SELECT count(*) FROM stg_olist WHERE category IS NULL") == (610,)
    assert _one(con, "SELECT count(*) FROM stg_olist WHERE weight_g IS NULL") == (2,)
    assert _one(con, "SELECT count(*) FROM stg_olist WHERE weight_g = 0") == (4,)
    assert _one(con, "SELECT count(DISTINCT category) FROM stg_olist") == (73,)


def test_ikea_catalog_with_unnamed_index_column(datasets_dir) -> None:
    raw = {
        "type": "csv",
        "layout": "product_catalog",
        "path": "product-catalog/ikea/ikea.csv",
        "columns": {"brand": "designer"},
    }
    con, (unit,) = _land_and_stage(datasets_dir, "ikea", raw)
    assert unit.rows == 3_694
    assert _one(con, "SELECT count(*) FROM raw_ikea WHERE column0 IS NOT NULL") == (3_694,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE len(_type_errors) > 0") == (0,)
    assert _one(con, "SELECT count(DISTINCT product_id) FROM stg_ikea") == (2_962,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE length_cm IS NULL") == (1_463,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE height_cm IS NULL") == (988,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE width_cm IS NULL") == (589,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE list_price <> floor(list_price)") == (52,)
    assert _one(con, "SELECT count(*) FROM stg_ikea WHERE brand LIKE '%Ehlén Johansson%'") > (0,)
