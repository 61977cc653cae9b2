"""The four datasets share one customer master and one product list."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tests.unit.demo.demo_checks import (
    CATALOG_HEADER,
    PRODUCT_CODE,
    behaviour,
    catalog,
    load_truth,
    online_retail,
    read_rows,
    superstore,
    truth_locations,
)


def _defective(out: Path) -> set[tuple[str, int]]:
    return set().union(*truth_locations(load_truth(out)).values())


def test_customer_keys_conform_by_their_number(dirty_dir: Path) -> None:
    ids = load_truth(dirty_dir)["reference"]["customer_ids"]
    first, last = ids["first"], ids["last"]
    assert first == 12346 and last - first + 1 >= 50
    bad = _defective(dirty_dir)
    for r in online_retail(dirty_dir):
        if r.fields[6] and r.loc not in bad:
            assert first <= int(float(r.fields[6])) <= last
    names: dict[str, str] = {}
    for r in superstore(dirty_dir):
        initials, number = r.fields[5].split("-")
        assert first <= int(number) <= last
        name = r.fields[6]
        assert initials == "".join(part[0] for part in (name.split()[0], name.split()[-1]))
        assert names.setdefault(number, name) == name  # one name per customer
    for r in behaviour(dirty_dir):
        names_b = r.fields[8]
        if r.fields[0] in names:
            assert names[r.fields[0]] == names_b  # the same person in both systems


def test_every_clean_behaviour_customer_buys_in_online_retail(dirty_dir: Path) -> None:
    """Even counting only defect-free sales lines (what survives the quality gate)."""
    bad = _defective(dirty_dir)
    buyers = {r.fields[6].removesuffix(".0") for r in online_retail(dirty_dir) if r.loc not in bad}
    clean_behaviour = [r for r in behaviour(dirty_dir) if r.loc not in bad]
    assert clean_behaviour
    assert {r.fields[0] for r in clean_behaviour} <= buyers
    _, stale = read_rows(dirty_dir, "customer_behaviour/stale-*.csv")
    assert stale and {r.fields[0] for r in stale} <= buyers


def test_every_clean_product_code_is_in_the_catalog(dirty_dir: Path) -> None:
    bad = _defective(dirty_dir)
    catalog_ids = {r.fields[0] for r in catalog(dirty_dir)}
    sold = {r.fields[1] for r in online_retail(dirty_dir) if r.loc not in bad}
    product_like = {c for c in sold if PRODUCT_CODE.match(c)}
    assert product_like and product_like <= catalog_ids
    assert sold - product_like <= {"POST", "DOT", "M", "D", "BANK CHARGES"}
    assert {r.fields[13] for r in superstore(dirty_dir)} <= catalog_ids


def test_prices_are_stable_and_equal_the_catalog_list_price(clean_dir: Path) -> None:
    list_price = {
        r.fields[0]: float(r.fields[CATALOG_HEADER.index("list_price")]) for r in catalog(clean_dir)
    }
    prices: dict[str, set[str]] = defaultdict(set)
    for r in online_retail(clean_dir):
        prices[r.fields[1]].add(r.fields[5])
    for code, seen in prices.items():
        if PRODUCT_CODE.match(code):
            assert len(seen) == 1, code
            assert float(seen.pop()) == list_price[code]
    for r in superstore(clean_dir):
        sales, qty, discount = float(r.fields[17]), int(r.fields[18]), float(r.fields[19])
        expected = list_price[r.fields[13]] * qty * (1 - discount)
        assert abs(sales - expected) < 1e-3, r


def test_cancellations_reverse_an_earlier_sale_of_the_same_customer(clean_dir: Path) -> None:
    invoices: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    meta: dict[str, tuple[str, str]] = {}
    for r in online_retail(clean_dir):
        inv, code, _, qty, when, price, cust, _ = r.fields
        invoices[inv][code] = (int(qty), price)
        meta[inv] = (when, cust)
    cancellations = [i for i in invoices if i.startswith("C")]
    assert cancellations
    for c in cancellations:
        when, cust = meta[c]
        lines = invoices[c]
        if set(lines) == {"D"}:  # a discount, not a return
            continue
        matches = [
            s
            for s in invoices
            if not s.startswith("C")
            and meta[s][1] == cust
            and meta[s][0] < when
            and all(invoices[s].get(code) == (-q, p) for code, (q, p) in lines.items())
        ]
        assert matches, c


def test_catalog_covers_both_systems_and_nothing_else(clean_dir: Path) -> None:
    ids = [r.fields[0] for r in catalog(clean_dir)]
    online = [i for i in ids if re.fullmatch(r"\d{5}[A-Za-z]*", i)]
    tableau = [i for i in ids if re.fullmatch(r"(FUR|OFF|TEC)-[A-Z]{2}-\d{8}", i)]
    assert online and tableau and len(online) + len(tableau) == len(ids)
