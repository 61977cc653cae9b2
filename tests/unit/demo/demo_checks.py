"""Independent readers and defect detectors for the demo generator's output.

They re-implement the checks from the written files with the ``csv`` module only (no code
of ``retailhub.demo`` except the published country list), so a test comparing them with
``defects.json`` fails if the generator writes something other than what it claims.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STOCK_CODE = re.compile(r"^(\d{5}[A-Za-z]*|POST|DOT|M|D|C2|S|BANK CHARGES|AMAZONFEE|CRUK|PADS|B)$")
PRODUCT_CODE = re.compile(r"^\d{5}[A-Za-z]*$")
INTEGER = re.compile(r"^-?\d+$")

OR_HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
SS_HEADER = [
    "Row ID",
    "Order ID",
    "Order Date",
    "Ship Date",
    "Ship Mode",
    "Customer ID",
    "Customer Name",
    "Segment",
    "Country",
    "City",
    "State",
    "Postal Code",
    "Region",
    "Product ID",
    "Category",
    "Sub-Category",
    "Product Name",
    "Sales",
    "Quantity",
    "Discount",
    "Profit",
]
CATALOG_HEADER = [
    "product_id",
    "product_name",
    "category",
    "sub_category",
    "brand",
    "weight_g",
    "length_cm",
    "width_cm",
    "height_cm",
    "list_price",
    "unit_cost",
]
BEHAVIOUR_HEADER = [
    "customer_id",
    "activity_date",
    "channel",
    "sessions",
    "page_views",
    "cart_adds",
    "orders",
    "spend",
    "customer_name",
    "email",
    "age",
    "gender",
    "country",
    "loyalty_tier",
    "signup_date",
]

Loc = tuple[str, int]  # (file relative to the output dir, 1-based data line)
Key = tuple[str, str, str | None]  # (dataset, kind, column)


@dataclass(frozen=True)
class Row:
    file: str
    line: int
    fields: list[str]

    @property
    def loc(self) -> Loc:
        return (self.file, self.line)


def read_rows(out: Path, pattern: str, encoding: str = "utf-8") -> tuple[list[str], list[Row]]:
    """Header and data rows of every file matching ``pattern`` (sorted by name)."""
    header: list[str] = []
    rows: list[Row] = []
    for path in sorted(out.glob(pattern)):
        rel = path.relative_to(out).as_posix()
        with open(path, encoding=encoding, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows.extend(Row(rel, i, r) for i, r in enumerate(reader, start=1))
    return header, rows


def online_retail(out: Path) -> list[Row]:
    return read_rows(out, "online_retail/*.csv")[1]


def behaviour(out: Path, include_stale: bool = False) -> list[Row]:
    rows = read_rows(out, "customer_behaviour/*.csv")[1]
    return [r for r in rows if include_stale or "stale-" not in r.file]


def catalog(out: Path) -> list[Row]:
    return read_rows(out, "product_catalog/products.csv")[1]


def superstore(out: Path) -> list[Row]:
    return read_rows(out, "superstore/*.csv", encoding="utf-8-sig")[1]


def load_truth(out: Path) -> dict[str, Any]:
    return json.loads((out / "defects.json").read_text(encoding="utf-8"))


def truth_locations(truth: dict[str, Any]) -> dict[Key, set[Loc]]:
    return {
        (e["dataset"], e["kind"], e["column"]): {(r["file"], r["line"]) for r in e["rows"]}
        for e in truth["defects"]
        if e["kind"] != "stale_file"
    }


def _is_datetime(text: str) -> bool:
    try:
        dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect(out: Path, countries: set[str]) -> dict[Key, set[Loc]]:
    """Every defect kind found in the files, by (dataset, kind, column)."""
    found: dict[Key, set[Loc]] = defaultdict(set)
    catalog_ids = {r.fields[0] for r in catalog(out)}
    sales_ids: set[str] = set()
    seen: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for r in online_retail(out):
        _inv, code, desc, qty, when, price, cust, country = r.fields
        ds = "online_retail"
        if cust == "":
            found[(ds, "missing_value", "customer_id")].add(r.loc)
        else:
            sales_ids.add(cust.removesuffix(".0"))
        if desc == "":
            found[(ds, "missing_value", "description")].add(r.loc)
        key = tuple(r.fields)
        if key in seen[r.file]:
            found[(ds, "duplicate_row", None)].add(r.loc)
        seen[r.file].add(key)
        if _is_number(price) and float(price) < 0:
            found[(ds, "negative_price", "unit_price")].add(r.loc)
        if not _is_datetime(when):
            found[(ds, "impossible_date", "invoice_at")].add(r.loc)
        if not STOCK_CODE.match(code):
            found[(ds, "bad_code", "stock_code")].add(r.loc)
        if country not in countries:
            found[(ds, "bad_code", "country")].add(r.loc)
        if not INTEGER.match(qty):
            found[(ds, "non_numeric", "quantity")].add(r.loc)
        if PRODUCT_CODE.match(code) and code not in catalog_ids:
            found[(ds, "orphan_key", "stock_code")].add(r.loc)
    for r in superstore(out):
        sales_ids.add(r.fields[5].split("-")[1])
    for r in catalog(out):
        if r.fields[CATALOG_HEADER.index("list_price")] == "":
            found[("product_catalog", "missing_value", "list_price")].add(r.loc)
    for r in behaviour(out):
        if r.fields[BEHAVIOUR_HEADER.index("email")] == "":
            found[("customer_behaviour", "missing_value", "email")].add(r.loc)
        if r.fields[0] not in sales_ids:
            found[("customer_behaviour", "orphan_key", "customer_id")].add(r.loc)
    return dict(found)


def revenue_lines(out: Path) -> list[tuple[str, dt.datetime, float]]:
    """(customer id, time, quantity x price) of every parseable line with a customer."""
    out_rows = []
    for r in online_retail(out):
        _, _, _, qty, when, price, cust, _ = r.fields
        if cust and INTEGER.match(qty) and _is_datetime(when) and _is_number(price):
            stamp = dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
            out_rows.append((cust, stamp, int(qty) * float(price)))
    return out_rows
