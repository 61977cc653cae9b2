"""defects.json must describe exactly the defects that are in the files - no more, no less."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.unit.demo.demo_checks import (
    BEHAVIOUR_HEADER,
    OR_HEADER,
    behaviour,
    detect,
    load_truth,
    online_retail,
    read_rows,
    truth_locations,
)

from retailhub.demo import COUNTRIES, GenerationReport, generate

EXPECTED_KEYS = {
    ("online_retail", "missing_value", "customer_id"),
    ("online_retail", "missing_value", "description"),
    ("online_retail", "duplicate_row", None),
    ("online_retail", "negative_price", "unit_price"),
    ("online_retail", "impossible_date", "invoice_at"),
    ("online_retail", "bad_code", "stock_code"),
    ("online_retail", "bad_code", "country"),
    ("online_retail", "non_numeric", "quantity"),
    ("online_retail", "orphan_key", "stock_code"),
    ("product_catalog", "missing_value", "list_price"),
    ("customer_behaviour", "missing_value", "email"),
    ("customer_behaviour", "orphan_key", "customer_id"),
}


def test_every_kind_is_listed_with_rows_matching_its_count(dirty_dir: Path) -> None:
    truth = load_truth(dirty_dir)
    keys = {(e["dataset"], e["kind"], e["column"]) for e in truth["defects"]}
    assert keys == EXPECTED_KEYS | {("customer_behaviour", "stale_file", None)}
    for e in truth["defects"]:
        if e["kind"] != "stale_file":
            assert e["count"] == len(e["rows"]) > 0, e["kind"]


def test_redetected_defects_equal_defects_json(dirty_dir: Path) -> None:
    truth = truth_locations(load_truth(dirty_dir))
    found = detect(dirty_dir, set(COUNTRIES))
    assert set(found) == set(truth)
    for key, locs in truth.items():
        assert found[key] == locs, key


def test_defective_rows_are_disjoint(dirty_dir: Path) -> None:
    seen: dict[tuple[str, int], tuple] = {}
    for key, locs in truth_locations(load_truth(dirty_dir)).items():
        for loc in locs:
            assert loc not in seen, f"{loc} is both {seen[loc]} and {key}"
            seen[loc] = key


def test_counts_follow_the_documented_formula(dirty: GenerationReport) -> None:
    truth = load_truth(dirty.out_dir)
    rate = truth["defect_rate"]
    n_or = truth["rows"]
    n_cat = truth["datasets"]["product_catalog"]["rows"]
    stale_rows = sum(
        f["rows"] for f in truth["datasets"]["customer_behaviour"]["files"] if "stale-" in f["file"]
    )
    n_beh = truth["datasets"]["customer_behaviour"]["rows"] - stale_rows
    expected = {
        "online_retail": max(1, round(rate * n_or / 9)),
        "product_catalog": max(1, round(rate * n_cat / 1)),
        "customer_behaviour": max(1, round(rate * n_beh / 2)),
    }
    assert n_beh == 3000 // 5
    for e in truth["defects"]:
        if e["kind"] != "stale_file":
            assert e["count"] == expected[e["dataset"]], e


def test_each_defective_row_differs_from_the_clean_run_in_exactly_one_field(
    dirty_dir: Path, clean_dir: Path
) -> None:
    """Same seed with and without defects: only the listed lines change, one field each."""
    truth = load_truth(dirty_dir)
    dup_copies = {
        (r["file"], r["line"])
        for e in truth["defects"]
        if e["kind"] == "duplicate_row"
        for r in e["rows"]
    }
    defective = set().union(*truth_locations(truth).values())
    dirty_rows = [r for r in online_retail(dirty_dir) if r.loc not in dup_copies]
    clean_rows = online_retail(clean_dir)
    assert len(dirty_rows) == len(clean_rows) == 3000
    changed = 0
    for d, c in zip(dirty_rows, clean_rows, strict=True):
        diff = [i for i in range(len(OR_HEADER)) if d.fields[i] != c.fields[i]]
        if d.loc in defective:
            assert len(diff) == 1, (d, c)
            changed += 1
        else:
            assert diff == [], (d, c)
    assert changed == 8 * max(1, round(0.03 * 3000 / 9))  # all kinds but duplicate_row


def test_duplicate_copies_follow_their_original(dirty_dir: Path) -> None:
    truth = load_truth(dirty_dir)
    (entry,) = [e for e in truth["defects"] if e["kind"] == "duplicate_row"]
    by_loc = {r.loc: r.fields for r in online_retail(dirty_dir)}
    for row in entry["rows"]:
        copy = by_loc[(row["file"], row["line"])]
        original = by_loc[(row["file"], row["duplicate_of"])]
        assert copy == original
        assert row["duplicate_of"] < row["line"]


def test_stale_file_is_valid_and_old(dirty_dir: Path) -> None:
    truth = load_truth(dirty_dir)
    (entry,) = [e for e in truth["defects"] if e["kind"] == "stale_file"]
    assert entry["count"] == 1 and entry["age_days"] == 30
    path = dirty_dir / entry["file"]
    assert path.name.startswith("stale-") and path.parent.name == "customer_behaviour"
    age_days = (time.time() - path.stat().st_mtime) / 86400
    assert 29.9 < age_days < 30.1
    header, rows = read_rows(dirty_dir, entry["file"])
    assert header == BEHAVIOUR_HEADER and rows
    main_keys = {tuple(r.fields[:3]) for r in behaviour(dirty_dir)}
    sales_ids = {r.fields[6].removesuffix(".0") for r in online_retail(dirty_dir)}
    for r in rows:
        assert all(r.fields), r  # no missing values
        assert r.fields[0] in sales_ids
        assert tuple(r.fields[:3]) not in main_keys
        assert r.fields[1][:7] == path.stem.removeprefix("stale-")
    fresh = [p for p in (dirty_dir / "customer_behaviour").glob("*.csv") if p != path]
    assert all(time.time() - p.stat().st_mtime < 3600 for p in fresh)


def test_zero_rate_means_no_defects_at_all(clean_dir: Path) -> None:
    truth = load_truth(clean_dir)
    assert truth["defects"] == []
    assert detect(clean_dir, set(COUNTRIES)) == {}
    assert not list((clean_dir / "customer_behaviour").glob("stale-*"))


def test_one_percent_of_a_small_run_still_gives_one_of_each(tmp_path: Path) -> None:
    generate(tmp_path, 300, seed=3, defect_rate=0.001)
    truth = load_truth(tmp_path)
    assert {e["count"] for e in truth["defects"]} == {1}
    assert truth_locations(truth) == detect(tmp_path, set(COUNTRIES))


@pytest.mark.parametrize(
    ("rows", "rate"),
    [(99, 0.01), (1000, -0.1), (1000, 0.51)],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, rows: int, rate: float) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, rows, seed=1, defect_rate=rate)
