"""The product catalog: ``product_catalog/products.csv``, one row per product of both systems.

Online Retail StockCodes (``85123A``) and Superstore Product IDs (``FUR-BO-10001798``) share
one table, so both sales datasets can be checked against it. ``list_price`` equals the price
the sales data uses; ``list_price > unit_cost > 0`` always. The table is small (at most a
few thousand rows), so the standard ``csv`` module is used. UTF-8 without BOM, LF.
"""

from __future__ import annotations

import csv
from pathlib import Path

from retailhub.demo.defects import (
    CATALOG_KINDS,
    PRODUCT_CATALOG,
    DefectLog,
    defect_count,
    sample_disjoint,
)
from retailhub.demo.master import Master, Products
from retailhub.demo.rand import Stream, generator

HEADER = (
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
)
FILE = f"{PRODUCT_CATALOG}/products.csv"


def n_rows_for(master: Master) -> int:
    return len(master.products) + len(master.ss_products)


def _rows(p: Products) -> list[list[str]]:
    order = sorted(range(len(p)), key=lambda i: p.codes[i])
    out = []
    for i in order:
        length, width, height = (f"{x:.1f}" for x in p.dims_cm[i])
        out.append(
            [
                p.codes[i],
                p.names[i],
                p.category[i],
                p.sub_category[i],
                p.brand[i],
                str(int(p.weight_g[i])),
                length,
                width,
                height,
                f"{p.price_cents[i] / 100:.2f}",
                f"{p.cost_cents[i] / 100:.2f}",
            ]
        )
    return out


def write_catalog(seed: int, rate: float, master: Master, out_dir: Path, log: DefectLog) -> dict:
    rows = _rows(master.products) + _rows(master.ss_products)
    k = defect_count(rate, len(rows), len(CATALOG_KINDS))
    log.expect(PRODUCT_CATALOG, CATALOG_KINDS, k)
    (missing,) = sample_disjoint(
        generator(seed, Stream.CATALOG_DEFECTS), len(rows), 1, k, PRODUCT_CATALOG
    )
    for i in missing.tolist():
        rows[i][HEADER.index("list_price")] = ""
    path = out_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(HEADER)
        out.writerows(rows)
    log.add(PRODUCT_CATALOG, CATALOG_KINDS[0], FILE, missing + 1)
    return {
        "dataset": PRODUCT_CATALOG,
        "path": FILE,
        "rows": len(rows),
        "bytes": path.stat().st_size,
    }
