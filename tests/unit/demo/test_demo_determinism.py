"""Same (rows, seed, defect_rate) -> the same bytes; the chunk size never changes the output."""

from __future__ import annotations

from pathlib import Path

from retailhub.demo import generate


def _snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", 2000, seed=5, defect_rate=0.02)
    generate(tmp_path / "b", 2000, seed=5, defect_rate=0.02)
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert len(a) > 40  # 24 + 1 + 1 + 24 (+ stale) files and defects.json
    assert a == b


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", 2000, seed=5, defect_rate=0.02)
    generate(tmp_path / "b", 2000, seed=6, defect_rate=0.02)
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    for name in ("superstore/Sample - Superstore.csv", "product_catalog/products.csv"):
        assert a[name] != b[name]
    assert a.get("online_retail/2025-11.csv") != b.get("online_retail/2025-11.csv")


def test_chunk_size_does_not_change_output(tmp_path: Path) -> None:
    """Tiny chunks (many per file, orders split across chunks) give the default bytes."""
    generate(tmp_path / "big", 5000, seed=9, defect_rate=0.02)
    generate(tmp_path / "small", 5000, seed=9, defect_rate=0.02, chunk_lines=37)
    assert _snapshot(tmp_path / "big") == _snapshot(tmp_path / "small")


def test_rerun_into_the_same_folder_replaces_previous_output(tmp_path: Path) -> None:
    generate(tmp_path, 5000, seed=1, defect_rate=0.05)
    first = _snapshot(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "online_retail" / "my-extra.csv").write_text("mine too")
    generate(tmp_path, 300, seed=1, defect_rate=0.0)
    second = _snapshot(tmp_path)
    # files the generator did not write are left alone, even CSV files beside its own
    mine = {"notes.txt", "online_retail/my-extra.csv"}
    assert mine <= set(second)
    assert not any(k.startswith("customer_behaviour/stale-") for k in second)
    fresh = tmp_path.parent / "fresh"
    generate(fresh, 300, seed=1, defect_rate=0.0)
    assert {k: v for k, v in second.items() if k not in mine} == _snapshot(fresh)
    assert first != second
