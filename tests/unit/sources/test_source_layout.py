"""Layouts: header mapping and the staging SQL's casts and type-error reasons (known answers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from retailhub.errors import ConfigError
from retailhub.sources import available_layouts, get_layout

RETAIL_HEADER = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
    "Country",
]  # fmt: skip
META = ["_source", "_source_file", "_line"]


def _raw_table(con: duckdb.DuckDBPyConnection, columns: list[str], rows: list[tuple]) -> None:
    """A landed-like table: every source column VARCHAR plus the lineage columns."""
    defs = ", ".join('"' + c.replace('"', '""') + '" VARCHAR' for c in columns)
    con.execute(f"CREATE TABLE raw ({defs}, _source VARCHAR, _source_file VARCHAR, _line BIGINT)")
    for i, row in enumerate(rows, start=1):
        con.execute(
            f"INSERT INTO raw VALUES ({', '.join('?' * (len(columns) + 3))})",
            [*row, "src", "/data/f.csv", i],
        )


def _stage(layout: str, columns: list[str], rows: list[tuple], **kw) -> list[dict]:
    con = duckdb.connect()
    _raw_table(con, columns, rows)
    sql = get_layout(layout).staging_sql("raw", [*columns, *META], **kw)
    rel = con.sql(sql)
    names = rel.columns
    return [dict(zip(names, r, strict=True)) for r in rel.order("_line").fetchall()]


def test_builtin_layouts_listed() -> None:
    assert set(available_layouts()) >= {
        "online_retail", "superstore", "product_catalog", "customer_behaviour", "none",
    }  # fmt: skip


def test_unknown_layout_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown layout 'retail'.*online_retail"):
        get_layout("retail")


def test_online_retail_known_answers() -> None:
    uk = "United Kingdom"
    rows = [
        ("536365", "85123A", "WHITE HEART", "6", "2010-12-01 08:26:00", "2.55", "17850.0", uk),
        ("C536379", "D", "Discount", " -1 ", "12/1/2010 9:41", "27.50", None, uk),
        ("536380", "22961", "JAM SET", "abc", "2024-02-30 10:00:00", "1,45", "12.5", "France"),
        ("536381", "POST", "POSTAGE", "2.5", "", "0.001", " 12583 ", "France"),
    ]
    out = _stage("online_retail", RETAIL_HEADER, rows)
    first, second, bad, frac = out
    assert first["customer_id"] == "17850"
    assert first["invoice_at"] == dt.datetime(2010, 12, 1, 8, 26)
    assert first["unit_price"] == Decimal("2.5500")
    assert first["quantity"] == 6
    assert first["_type_errors"] == []
    assert first["_source_file"] == "/data/f.csv" and first["_line"] == 1
    # Kaggle date variant and padded negative number
    assert second["invoice_at"] == dt.datetime(2010, 12, 1, 9, 41)
    assert second["quantity"] == -1
    assert second["customer_id"] is None
    assert second["_type_errors"] == []
    # every failing field gets one reason; the others still cast
    assert bad["quantity"] is None and bad["invoice_at"] is None and bad["unit_price"] is None
    assert bad["customer_id"] == "12.5"  # not an integer id: left as written
    assert bad["_type_errors"] == [
        "quantity: 'abc' is not a valid BIGINT",
        "invoice_at: '2024-02-30 10:00:00' does not match %Y-%m-%d %H:%M:%S or %m/%d/%Y %H:%M "
        "(nor ISO 8601)",
        "unit_price: '1,45' is not a valid DECIMAL(18,4)",
    ]
    # 2.5 is not rounded into a quantity; an empty date is NULL, and missing: the layout
    # requires one
    assert frac["quantity"] is None
    assert frac["invoice_at"] is None
    assert frac["customer_id"] == "12583"
    assert frac["unit_price"] == Decimal("0.0010")
    assert frac["_type_errors"] == [
        "quantity: '2.5' is not a valid BIGINT",
        "invoice_at: missing (the layout requires a value)",
    ]


def test_a_blank_required_value_is_a_reason_to_quarantine_the_row() -> None:
    """A blank quantity passed the gate (completeness is a share, one blank in 600 is under
    its 5 %) and then failed the model tests, stopping every source's publish."""
    ts, uk = "2010-12-01 08:26:00", "United Kingdom"
    rows = [
        ("536365", "85123A", "X", "", ts, "2.55", "17850", uk),
        (" ", "", "X", "1", ts, " ", "17850", uk),
        ("536366", "85123A", None, "1", ts, "2.55", None, None),  # optional ones may be blank
    ]
    no_quantity, blanks, optional = _stage("online_retail", RETAIL_HEADER, rows)
    assert no_quantity["_type_errors"] == ["quantity: missing (the layout requires a value)"]
    assert blanks["_type_errors"] == [
        "invoice_no: missing (the layout requires a value)",
        "stock_code: missing (the layout requires a value)",
        "unit_price: missing (the layout requires a value)",
    ]
    assert optional["_type_errors"] == []


def test_staging_output_columns_and_types() -> None:
    con = duckdb.connect()
    _raw_table(con, RETAIL_HEADER, [])
    rel = con.sql(get_layout("online_retail").staging_sql("raw", [*RETAIL_HEADER, *META]))
    assert dict(zip(rel.columns, [str(t) for t in rel.types], strict=True)) == {
        "invoice_no": "VARCHAR",
        "stock_code": "VARCHAR",
        "description": "VARCHAR",
        "quantity": "BIGINT",
        "invoice_at": "TIMESTAMP",
        "unit_price": "DECIMAL(18,4)",
        "customer_id": "VARCHAR",
        "country": "VARCHAR",
        "_source": "VARCHAR",
        "_source_file": "VARCHAR",
        "_line": "BIGINT",
        "_type_errors": "VARCHAR[]",
    }


def test_superstore_unpadded_dates_and_both_header_spellings() -> None:
    spaced = [
        "Row ID",
        "Order ID",
        "Order Date",
        "Ship Date",
        "Sub-Category",
        "Postal Code",
        "Sales",
    ]
    tight = ["RowID", "OrderID", "OrderDate", "ShipDate", "Sub-Category", "PostalCode", "Sales"]
    layout = get_layout("superstore")
    for header in (spaced, tight):
        mapping = layout.resolve(
            [*header, "Ship Mode", "Customer ID", "Customer Name", "Segment", "Country", "City",
             "State", "Region", "Product ID", "Category", "Product Name", "Quantity", "Discount",
             "Profit"],
        )  # fmt: skip
        assert mapping["row_id"] == header[0]
        assert mapping["postal_code"] == header[5]
        assert mapping["sub_category"] == "Sub-Category"


def test_superstore_casts() -> None:
    header = [
        "Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode", "Customer ID",
        "Customer Name", "Segment", "Country", "City", "State", "Postal Code", "Region",
        "Product ID", "Category", "Sub-Category", "Product Name", "Sales", "Quantity",
        "Discount", "Profit",
    ]  # fmt: skip
    row = (
        "1", "CA-2018-152156", "11/8/2018", "11/11/2018", "Second Class", "CG-12520",
        "Claire Gute", "Consumer", "United States", "Henderson", "Kentucky", "06824", "South",
        "FUR-BO-10001798", "Furniture", "Bookcases", "Bush Somerset", "261.96", "2", "0", "41.9136",
    )  # fmt: skip
    (out,) = _stage("superstore", header, [row])
    assert out["order_date"] == dt.date(2018, 11, 8)
    assert out["ship_date"] == dt.date(2018, 11, 11)
    assert out["postal_code"] == "06824"  # text: leading zero kept
    assert (out["sales"], out["quantity"], out["profit"]) == (261.96, 2, 41.9136)
    assert out["_type_errors"] == []


def test_date_format_override() -> None:
    header = ["Customer ID", "Signup Date"]
    (out,) = _stage("customer_behaviour", header, [("7", "08.11.2018")], date_format="%d.%m.%Y")
    assert out["signup_date"] == dt.date(2018, 11, 8)
    (bad,) = _stage("customer_behaviour", header, [("7", "11/08/2018")], date_format="%d.%m.%Y")
    assert bad["_type_errors"] == [
        "signup_date: '11/08/2018' does not match %d.%m.%Y (nor ISO 8601)"
    ]
    (iso,) = _stage("customer_behaviour", header, [("7", "2018-11-08")], date_format="%d.%m.%Y")
    assert iso["signup_date"] == dt.date(2018, 11, 8) and iso["_type_errors"] == []


def test_typed_and_iso_timestamps_are_read_as_utc_whatever_the_session_time_zone() -> None:
    """A Parquet timestamp with a time zone, or fractional seconds, or a date, united with a
    CSV's text became text ('2024-03-01 05:00:00+00') that no layout format matched: every
    row was quarantined. And a typed one was cast in the machine's time zone."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'Asia/Tokyo'")
    _raw_table(con, RETAIL_HEADER, [])
    for i, when in enumerate(
        [
            "2024-03-01 05:00:00+00",
            "2024-03-01 07:00:00+02:00",
            "2024-03-03 10:54:00.25",
            "2024-03-04",
            "2024-03-05T06:07:08Z",
            "2024-13-01 00:00:00",
        ],
        start=1,
    ):
        con.execute(
            "INSERT INTO raw VALUES ('1', 'A', 'x', '1', ?, '1', '7', 'UK', 's', 'f', ?)",
            [when, i],
        )
    sql = get_layout("online_retail").staging_sql("raw", [*RETAIL_HEADER, *META])
    rows = con.sql(sql).order("_line").fetchall()
    got = [(r[4], r[-1]) for r in rows]  # invoice_at, _type_errors
    assert got[:5] == [
        (dt.datetime(2024, 3, 1, 5, 0), []),
        (dt.datetime(2024, 3, 1, 5, 0), []),
        (dt.datetime(2024, 3, 3, 10, 54, 0, 250000), []),
        (dt.datetime(2024, 3, 4, 0, 0), []),
        (dt.datetime(2024, 3, 5, 6, 7, 8), []),
    ]
    assert got[5][0] is None and "does not match" in got[5][1][0]
    typed = duckdb.connect()
    typed.execute("set TimeZone = 'Asia/Tokyo'")
    typed.execute(
        "CREATE TABLE raw AS SELECT 'i' AS InvoiceNo, 'A' AS StockCode, 1 AS Quantity, "
        "TIMESTAMPTZ '2024-03-01 05:00:00+00' AS InvoiceDate, 1.5 AS UnitPrice, "
        "'7' AS CustomerID, 'UK' AS Country, 's' AS _source, 'f' AS _source_file, 1 AS _line"
    )
    types = {r[0]: r[1] for r in typed.sql("DESCRIBE raw").fetchall()}
    sql = get_layout("online_retail").staging_sql("raw", list(types), source_types=types)
    assert typed.sql(f"SELECT invoice_at FROM ({sql})").fetchall() == [
        (dt.datetime(2024, 3, 1, 5, 0),)
    ]


def test_absent_optional_columns_are_typed_nulls_and_yes_no_booleans() -> None:
    header = ["Customer ID", "Age", "Subscription Status", "Purchase Amount (USD)", "Unrelated"]
    out = _stage(
        "customer_behaviour", header, [("1", "55", "Yes", "53", "zzz"), ("2", "x", "No", "", "q")]
    )
    assert out[0]["subscription_status"] is True and out[1]["subscription_status"] is False
    assert out[0]["purchase_amount"] == 53.0 and out[1]["purchase_amount"] is None
    assert out[0]["activity_date"] is None and out[0]["email"] is None
    assert "Unrelated" not in out[0] and "unrelated" not in out[0]
    assert out[1]["_type_errors"] == ["age: 'x' is not a valid BIGINT"]


def test_missing_required_columns_name_source_and_columns() -> None:
    with pytest.raises(ConfigError) as err:
        get_layout("online_retail").resolve(["InvoiceNo", "Description", "Country"], source="shop")
    msg = str(err.value)
    assert "source 'shop'" in msg
    for col in ("stock_code", "quantity", "invoice_at", "unit_price", "customer_id"):
        assert col in msg
    assert "description" not in msg.split("needs")[1].split("not found")[0]


def test_overrides_map_odd_headers_and_bad_overrides_fail() -> None:
    layout = get_layout("product_catalog")
    mapping = layout.resolve(
        ["sku_code", "label", "eur"], {"product_id": "sku_code", "list_price": "eur"}
    )
    assert mapping["product_id"] == "sku_code" and mapping["list_price"] == "eur"
    assert mapping["product_name"] is None  # 'label' is not an alias: left out
    with pytest.raises(ConfigError, match=r"columns\.product_id names 'nope'"):
        layout.resolve(["sku_code"], {"product_id": "nope"}, source="cat")
    with pytest.raises(ConfigError, match="not columns of layout"):
        layout.resolve(["sku_code"], {"colour": "sku_code"}, source="cat")


def test_olist_and_ikea_headers_map_without_overrides() -> None:
    layout = get_layout("product_catalog")
    olist = layout.resolve([
        "product_id", "product_category_name", "product_name_lenght", "product_description_lenght",
        "product_photos_qty", "product_weight_g", "product_length_cm", "product_height_cm",
        "product_width_cm",
    ])  # fmt: skip
    assert olist["category"] == "product_category_name"
    assert olist["weight_g"] == "product_weight_g" and olist["width_cm"] == "product_width_cm"
    assert olist["product_name"] is None  # product_name_lenght is a length, not a name
    ikea = layout.resolve([
        "column0", "item_id", "name", "category", "price", "old_price", "sellable_online", "link",
        "other_colors", "short_description", "designer", "depth", "height", "width",
    ])  # fmt: skip
    assert (ikea["product_id"], ikea["product_name"], ikea["list_price"]) == (
        "item_id",
        "name",
        "price",
    )
    assert (ikea["length_cm"], ikea["height_cm"], ikea["width_cm"]) == ("depth", "height", "width")


def test_typed_source_columns_are_cast_directly() -> None:
    """Parquet/database sources keep their types; staging casts instead of parsing text."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE raw AS SELECT 'INV1' AS invoice_no, 'S1' AS stock_code,"
        " 6::BIGINT AS quantity,"
        " TIMESTAMP '2011-01-02 03:04:05' AS invoice_at, 2.5::DOUBLE AS unit_price,"
        " 17850.0::DOUBLE AS customer_id, 'UK' AS country, 's' AS _source, 'f' AS _source_file,"
        " 1::BIGINT AS _line"
    )
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    sql = get_layout("online_retail").staging_sql("raw", list(types), source_types=types)
    (row,) = con.sql(sql).fetchall()
    out = dict(zip(con.sql(sql).columns, row, strict=True))
    assert out["invoice_at"] == dt.datetime(2011, 1, 2, 3, 4, 5)
    assert out["customer_id"] == "17850"
    assert out["unit_price"] == Decimal("2.5000")
    assert out["_type_errors"] == []


def test_pass_through_keeps_everything() -> None:
    con = duckdb.connect()
    _raw_table(con, ["a", "B"], [("1", "x")])
    sql = get_layout("none").staging_sql("raw", ["a", "B", *META])
    rel = con.sql(sql)
    assert rel.columns == ["a", "B", "_source", "_source_file", "_line", "_type_errors"]
    assert rel.fetchall() == [("1", "x", "src", "/data/f.csv", 1, [])]


def test_layout_file_from_project(tmp_path) -> None:
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "loyalty.yaml").write_text(
        "name: loyalty\ncolumns:\n  - {name: member_id, type: VARCHAR, aliases: [Member]}\n"
        "  - {name: points, type: BIGINT}\n"
    )
    layout = get_layout("layouts/loyalty.yaml", tmp_path)
    assert layout.column_types == {"member_id": "VARCHAR", "points": "BIGINT"}
    (tmp_path / "layouts" / "bad.yaml").write_text(
        "name: bad\ncolumns:\n  - {name: x, type: MONEY}\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml: columns\.0\.type"):
        get_layout("layouts/bad.yaml", tmp_path)


def test_identifiers_with_quotes_and_parentheses_are_safe() -> None:
    header = ['Customer "ID"', "Purchase Amount (USD)"]
    out = _stage("customer_behaviour", header, [("5", "12.5")])
    # 'Customer "ID"' loosely equals 'Customer ID'
    assert out[0]["customer_id"] == "5" and out[0]["purchase_amount"] == 12.5


def test_header_spellings_landed_side_by_side_are_coalesced(tmp_path) -> None:
    """Two files of one source, one with 'Customer ID', one with 'CustomerID', in one table."""
    from retailhub.config.sources import parse_source_config
    from retailhub.sources import SourceState, build_source, land

    (tmp_path / "a.csv").write_text("Customer ID,Age\n17850.0,30\n")
    (tmp_path / "b.csv").write_text("CustomerID,Age\n12583,x\n")
    src = build_source(
        parse_source_config("cb", {"type": "csv", "layout": "none", "path": "*.csv"}), tmp_path
    )
    con = duckdb.connect()
    land(con, src, src.discover(SourceState()), "raw")
    columns = [r[0] for r in con.sql("DESCRIBE raw").fetchall()]
    rel = con.sql(get_layout("customer_behaviour").staging_sql("raw", columns))
    rows = rel.order("_source_file").project("customer_id, age, _type_errors").fetchall()
    assert rows == [("17850", 30, []), ("12583", None, ["age: 'x' is not a valid BIGINT"])]


@pytest.mark.parametrize("layout", ["none", "online_retail"])
def test_a_nul_character_is_kept_as_u_fffd_and_named_as_a_type_error(layout: str) -> None:
    """PostgreSQL cannot store a NUL in text: one NUL byte failed a whole publish."""
    con = duckdb.connect()
    con.execute(
        "create table landed as select '536365' as InvoiceNo, '85123A' as StockCode, "
        "'WHITE' || chr(0) || 'HEART' as Description, '6' as Quantity, "
        "'2024-01-02 08:12:00' as InvoiceDate, '2.55' as UnitPrice, '17850' as CustomerID, "
        "'United Kingdom' as Country, 'f.csv' as _source_file, 1::bigint as _line, "
        "'s' as _source"
    )
    columns = [r[0] for r in con.execute("describe landed").fetchall()]
    sql = get_layout(layout).staging_sql("landed", columns, nul_columns=["Description"])
    row = con.execute(f"select * from ({sql})").fetchdf().iloc[0]
    description = row["Description" if layout == "none" else "description"]
    assert description == "WHITE\ufffdHEART"
    assert list(row["_type_errors"]) == [
        f"{'Description' if layout == 'none' else 'description'}: contains a NUL character "
        "(kept as U+FFFD)"
    ]


def test_a_header_naming_a_layout_column_twice_is_refused(caplog) -> None:
    """Landing keeps the first of two equal names and numbers the other: descriptions under
    a second 'Country' header were published as countries without a word."""
    layout = get_layout("online_retail")
    header = [*RETAIL_HEADER[:2], "Country", *RETAIL_HEADER[3:]]
    with pytest.raises(ConfigError, match=r"the header of f\.csv names column 'Country' "):
        layout.check_header(header, source="s", origin="f.csv")
    # a mapping cannot tell two equal names apart either
    with pytest.raises(ConfigError, match=r"columns\.country names 'Country', which the header"):
        layout.check_header(header, {"country": "Country"}, source="s", origin="f.csv")
    layout.check_header([*RETAIL_HEADER, "Notes", "notes"], source="s", origin="f.csv")  # extra
    with caplog.at_level("WARNING", logger="retailhub.sources.layout"):
        layout.check_header([*RETAIL_HEADER, "Price"], source="s", origin="f.csv")
    assert "has 'UnitPrice' and 'Price' for unit_price" in caplog.text


def test_a_zoned_timestamp_read_as_text_keeps_its_utc_date_without_a_format() -> None:
    """Typed columns reach staging as text in the session's time zone: a date column without
    a format took the local date of the instant ('2024-03-01' in New York for 01:30 UTC)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'America/New_York'")
    con.execute(
        "CREATE TABLE raw AS SELECT '7' AS \"Customer ID\", "
        "TIMESTAMPTZ '2024-03-02 01:30:00+00' AS \"Activity Date\", "
        "'s' AS _source, 'f' AS _source_file, 1 AS _line"
    )
    columns = [r[0] for r in con.sql("DESCRIBE raw").fetchall()]
    sql = get_layout("customer_behaviour").staging_sql("raw", columns)
    assert con.sql(f"SELECT activity_date, _type_errors FROM ({sql})").fetchall() == [
        (dt.date(2024, 3, 2), [])
    ]


def test_an_absent_optional_column_the_models_need_is_a_missing_value(tmp_path) -> None:
    """required: false lets a source lack the column; nullable: false says the models need a
    value: every row then passed the gate and failed the model tests."""
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "orders.yaml").write_text(
        "name: orders\ncolumns:\n  - {name: order_id, type: VARCHAR}\n"
        "  - {name: amount, type: DOUBLE, required: false, nullable: false}\n",
        encoding="utf-8",
    )
    con = duckdb.connect()
    _raw_table(con, ["order_id"], [("A1",)])
    sql = get_layout("layouts/orders.yaml", tmp_path).staging_sql("raw", ["order_id", *META])
    assert con.sql(f"SELECT _type_errors FROM ({sql})").fetchall() == [
        (["amount: missing (the layout requires a value)"],)
    ]
