"""Every file has the real public layout: header, encoding, BOM, line ends, value formats."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path

from tests.unit.demo.demo_checks import (
    BEHAVIOUR_HEADER,
    CATALOG_HEADER,
    OR_HEADER,
    SS_HEADER,
    behaviour,
    catalog,
    load_truth,
    online_retail,
    read_rows,
    superstore,
)

from retailhub.demo import GenerationReport

MONTH_FILE = re.compile(r"^20(24|25)-(0[1-9]|1[0-2])\.csv$")


def _raw(path: Path) -> bytes:
    return path.read_bytes()


def test_online_retail_files_are_monthly_utf8_lf_without_bom(clean_dir: Path) -> None:
    files = sorted((clean_dir / "online_retail").glob("*.csv"))
    assert len(files) >= 20
    for path in files:
        assert MONTH_FILE.match(path.name), path.name
        data = _raw(path)
        assert not data.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in data and data.endswith(b"\n")
        data.decode("utf-8")
        assert data.split(b"\n", 1)[0].decode() == ",".join(OR_HEADER)
    header, _ = read_rows(clean_dir, "online_retail/*.csv")
    assert header == OR_HEADER


def test_online_retail_values_look_like_uci(clean_dir: Path) -> None:
    rows = online_retail(clean_dir)
    for r in rows:
        inv, _code, desc, qty, when, price, cust, _country = r.fields
        assert re.fullmatch(r"C?\d{6,7}", inv)
        stamp = dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
        assert stamp.second == 0
        assert r.file == f"online_retail/{stamp:%Y-%m}.csv"  # the file is the month
        assert dt.date(2024, 1, 1) <= stamp.date() <= dt.date(2025, 12, 31)
        assert re.fullmatch(r"\d{5,6}\.0", cust)  # CustomerID is written as a float
        assert int(float(cust)) >= 12346
        assert float(price) > 0 and re.fullmatch(r"\d+\.\d{1,3}", price)
        assert (int(qty) < 0) == inv.startswith("C")  # only cancellations are negative
        assert desc == desc.strip() and desc
    codes = Counter(r.fields[1] for r in rows)
    assert {"POST"} <= set(codes)
    non_products = sum(n for c, n in codes.items() if not re.fullmatch(r"\d{5}[A-Za-z]*", c))
    assert 0 < non_products / len(rows) < 0.03
    countries = Counter(r.fields[7] for r in rows)
    assert countries.most_common(1)[0][0] == "United Kingdom"
    assert len(countries) >= 4
    quoted = [p for p in (clean_dir / "online_retail").glob("*.csv") if b'"' in p.read_bytes()]
    assert quoted  # descriptions with commas or inch marks are RFC-4180 quoted


def test_invoices_have_several_lines_with_one_time_and_customer(clean_dir: Path) -> None:
    by_invoice: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    lines = Counter()
    for r in online_retail(clean_dir):
        by_invoice[r.fields[0]].add((r.fields[4], r.fields[6], r.fields[7]))
        lines[r.fields[0]] += 1
    assert all(len(v) == 1 for v in by_invoice.values())
    assert sum(lines.values()) / len(lines) > 3
    cancels = [k for k in lines if k.startswith("C")]
    assert 0.005 < len(cancels) / len(lines) < 0.08


def test_superstore_is_tableau_layout(clean_dir: Path) -> None:
    path = clean_dir / "superstore" / "Sample - Superstore.csv"
    data = _raw(path)
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n")  # CRLF only
    assert data[3:].split(b"\r\n", 1)[0].decode() == ",".join(SS_HEADER)
    rows = superstore(clean_dir)
    assert len(rows) == 200  # max(200, 3000 // 20)
    us_date = re.compile(r"([1-9]|1[0-2])/([1-9]|[12]\d|3[01])/20\d\d")
    for i, r in enumerate(rows, start=1):
        f = dict(zip(SS_HEADER, r.fields, strict=True))
        assert f["Row ID"] == str(i)
        assert us_date.fullmatch(f["Order Date"]) and us_date.fullmatch(f["Ship Date"])
        ordered = dt.datetime.strptime(f["Order Date"], "%m/%d/%Y").date()
        shipped = dt.datetime.strptime(f["Ship Date"], "%m/%d/%Y").date()
        assert 0 <= (shipped - ordered).days <= 7
        assert re.fullmatch(rf"(CA|US)-{ordered.year}-\d{{6}}", f["Order ID"])
        assert re.fullmatch(r"[A-Z]{2}-\d{5,6}", f["Customer ID"])
        assert re.fullmatch(r"(FUR|OFF|TEC)-[A-Z]{2}-\d{8}", f["Product ID"])
        assert f["Country"] == "United States"
        assert float(f["Sales"]) > 0 and 0 <= float(f["Discount"]) <= 0.8
        assert 1 <= int(f["Quantity"]) <= 14


def test_catalog_layout(clean_dir: Path) -> None:
    data = _raw(clean_dir / "product_catalog" / "products.csv")
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
    header, rows = read_rows(clean_dir, "product_catalog/products.csv")
    assert header == CATALOG_HEADER
    ids = [r.fields[0] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        f = dict(zip(CATALOG_HEADER, r.fields, strict=True))
        assert float(f["list_price"]) > float(f["unit_cost"]) > 0
        assert int(f["weight_g"]) > 0
        assert float(f["length_cm"]) >= float(f["width_cm"]) >= float(f["height_cm"]) > 0
    assert any(re.fullmatch(r"\d{5}[A-Z]", i) for i in ids)  # like 85123A
    assert any(re.fullmatch(r"(FUR|OFF|TEC)-[A-Z]{2}-\d{8}", i) for i in ids)


def test_behaviour_layout_and_unique_keys(clean_dir: Path) -> None:
    files = sorted((clean_dir / "customer_behaviour").glob("*.csv"))
    for path in files:
        assert MONTH_FILE.match(path.name)
        data = _raw(path)
        assert data.count(b"\r\n") == data.count(b"\n") > 1  # CRLF like the public file
        assert not data.startswith(b"\xef\xbb\xbf")
    header, _ = read_rows(clean_dir, "customer_behaviour/*.csv")
    assert header == BEHAVIOUR_HEADER
    rows = behaviour(clean_dir)
    assert len(rows) == 3000 // 5
    keys = [tuple(r.fields[:3]) for r in rows]
    assert len(keys) == len(set(keys))
    for r in rows:
        f = dict(zip(BEHAVIOUR_HEADER, r.fields, strict=True))
        assert r.file == f"customer_behaviour/{f['activity_date'][:7]}.csv"
        assert f["channel"] in {"web", "mobile", "store", "marketplace"}
        sessions, _views, carts, orders = (
            int(f[k]) for k in ("sessions", "page_views", "cart_adds", "orders")
        )
        assert sessions >= 1 and orders <= carts
        assert (float(f["spend"]) > 0) == (orders > 0)
        assert re.fullmatch(r"\d+\.\d\d", f["spend"])
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.com", f["email"])
        assert f["signup_date"] < "2024-01-01"
        assert all(r.fields), r


def test_report_matches_files(dirty: GenerationReport) -> None:
    truth = load_truth(dirty.out_dir)
    counted = {
        "online_retail": len(online_retail(dirty.out_dir)),
        "superstore": len(superstore(dirty.out_dir)),
        "product_catalog": len(catalog(dirty.out_dir)),
        "customer_behaviour": len(behaviour(dirty.out_dir, include_stale=True)),
    }
    assert dirty.rows == counted
    assert {k: v["rows"] for k, v in truth["datasets"].items()} == counted
    dups = max(1, round(0.03 * 3000 / 9))
    assert counted["online_retail"] == 3000 + dups  # rows counts lines before duplicates
    for f in dirty.files:
        assert f["path"].is_file() and f["path"].stat().st_size == f["bytes"]
    listed = {
        (dirty.out_dir / f["file"]).resolve()
        for d in truth["datasets"].values()
        for f in d["files"]
    }
    assert listed == {f["path"].resolve() for f in dirty.files}
    written = {p.resolve() for p in dirty.out_dir.rglob("*.csv")}
    assert written == listed
    assert dirty.defects_path == dirty.out_dir / "defects.json"
    assert truth["seed"] == 7 and truth["rows"] == 3000 and truth["defect_rate"] == 0.03
    assert truth["generated_at_fixed"] == "2025-12-31"
