"""Superstore in the Tableau "Sample - Superstore" layout (UTF-8 BOM, CRLF, M/D/YYYY).

``max(200, rows // 20)`` lines, one file, written in chunks like Online Retail. Customers are
the shared master (``Customer ID`` = initials + '-' + master id, so the number conforms);
prices are the catalog list prices, so ``Sales = list_price x Quantity x (1 - Discount)``.
No defects are injected here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from retailhub.demo import timeline, vocab
from retailhub.demo import writer as w
from retailhub.demo.defects import SUPERSTORE
from retailhub.demo.master import Master
from retailhub.demo.online_retail import dedupe
from retailhub.demo.rand import Picker, Stream, generator, hash_uniform, pick_weighted

HEADER = (
    "Row ID,Order ID,Order Date,Ship Date,Ship Mode,Customer ID,Customer Name,Segment,Country,"
    "City,State,Postal Code,Region,Product ID,Category,Sub-Category,Product Name,Sales,"
    "Quantity,Discount,Profit\r\n"
)
FILE = f"{SUPERSTORE}/Sample - Superstore.csv"
MAX_LINES = 14
US_PREFIX_SHARE = 0.17  # Order IDs are CA-... (83 %) or US-... (17 %)
HOME_CITY_SHARE = 0.8  # other orders ship elsewhere: Region belongs to the address
QTY_WEIGHTS = np.array([9, 24, 24, 12, 12, 6, 6, 2.5, 2.5, 0.6, 0.4, 0.3, 0.3, 0.3])
#: Discount levels and their weights for the three discount profiles of a ship-to city.
DISCOUNTS = np.array([0, 0.1, 0.15, 0.2, 0.3, 0.32, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8])
DISCOUNT_CUM = (
    np.cumsum([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    np.cumsum([70, 8, 7, 15, 0, 0, 0, 0, 0, 0, 0, 0]),
    np.cumsum([20, 0, 0, 40, 8, 3, 6, 3, 4, 3, 6, 4]),
)

Progress = Callable[[str, int, int], None]


def n_lines_for(rows: int) -> int:
    return max(200, rows // 20)


def write_superstore(
    seed: int,
    rows: int,
    master: Master,
    out_dir: Path,
    chunk_lines: int,
    progress: Progress | None,
) -> list[dict]:
    n_lines = n_lines_for(rows)
    rng = generator(seed, Stream.SS_ORDERS)
    prods = master.ss_products
    size = _order_sizes(rng, n_lines, min(MAX_LINES, len(prods) // 2))
    n = len(size)
    start = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    day = np.repeat(
        np.arange(timeline.N_DAYS), rng.multinomial(n, timeline.day_weights("superstore"))
    )
    cust = pick_weighted(np.cumsum(master.customers.weight), rng.random(n))
    city_p = np.asarray(vocab.US_CITY_SHARES) / np.sum(vocab.US_CITY_SHARES)
    city = np.where(
        rng.random(n) < HOME_CITY_SHARE,
        master.customers.us_city[cust],
        rng.choice(len(vocab.US_CITIES), n, p=city_p),
    )
    mode_p = np.asarray(vocab.SHIP_MODE_SHARES) / np.sum(vocab.SHIP_MODE_SHARES)
    mode = rng.choice(len(vocab.SHIP_MODES), n, p=mode_p)
    lo_days = np.array([a for a, _ in vocab.SHIP_DAYS])[mode]
    hi_days = np.array([b for _, b in vocab.SHIP_DAYS])[mode]
    ship = day + lo_days + np.floor(rng.random(n) * (hi_days - lo_days + 1)).astype(np.int64)
    prefix = (rng.random(n) < US_PREFIX_SHARE).astype(np.int64)
    digits = 900_000 if n <= 900_000 else 9_000_000
    number = digits // 9 + rng.choice(digits, n, replace=False)

    c = master.customers
    t_cust = w.join([c.superstore_ids(), c.names(), w.take(w.strings(vocab.SEGMENTS), c.segment)])
    t_city = w.strings([f"{w.csv_field(a)},{b},{z},{r}" for a, b, z, r, _ in vocab.US_CITIES])
    profile = np.array([p for *_, p in vocab.US_CITIES])[city]
    t_prod = w.strings(
        [
            f"{code},{cat},{sub},{w.csv_field(name)}"
            for code, cat, sub, name in zip(
                prods.codes, prods.category, prods.sub_category, prods.names, strict=True
            )
        ]
    )
    t_date = w.strings(timeline.us_dates(extra_days=10))
    t_year = w.strings([str(y) for y in timeline.year_of_day().tolist()])
    t_prefix = w.strings(["CA", "US"])
    t_mode = w.strings(list(vocab.SHIP_MODES))
    t_disc = w.floats(DISCOUNTS)
    price = prods.price_cents / 100
    cost = prods.cost_cents / 100
    pick_product = Picker(prods.weight)
    pick_qty = Picker(QTY_WEIGHTS)

    with w.CsvSink(out_dir / FILE, HEADER, bom=True) as sink:
        lo = 0
        while lo < n:
            hi = int(np.searchsorted(start, start[lo] + chunk_lines, side="right")) - 1
            hi = min(max(hi, lo + 1), n)
            sizes = size[lo:hi]
            grp = np.repeat(np.arange(hi - lo), sizes)
            g = np.arange(start[lo], start[hi])
            product = pick_product(hash_uniform(seed, Stream.SS_LINE_PRODUCT, g))
            product = dedupe(seed, Stream.SS_LINE_DEDUPE, grp, product, g, len(prods))
            qty = 1 + pick_qty(hash_uniform(seed, Stream.SS_LINE_QTY, g))
            u = hash_uniform(seed, Stream.SS_LINE_DISCOUNT, g)
            prof = profile[lo:hi][grp]
            d_idx = np.choose(prof, [pick_weighted(cum, u) for cum in DISCOUNT_CUM])
            sales = np.round(price[product] * qty * (1 - DISCOUNTS[d_idx]), 4)
            profit = np.round(sales - cost[product] * qty, 4)

            order_id = w.join(
                [
                    w.take(t_prefix, prefix[lo:hi]),
                    w.take(t_year, day[lo:hi]),
                    w.ints(number[lo:hi]),
                ],
                "-",
            )
            head = w.join(
                [
                    order_id,
                    w.take(t_date, day[lo:hi]),
                    w.take(t_date, ship[lo:hi]),
                    w.take(t_mode, mode[lo:hi]),
                    w.take(t_cust, cust[lo:hi]),
                    "United States",
                    w.take(t_city, city[lo:hi]),
                ]
            )
            lines = w.join(
                [
                    w.ints(g + 1),
                    w.take(head, grp),
                    w.take(t_prod, product),
                    w.floats(sales),
                    w.ints(qty),
                    w.take(t_disc, d_idx),
                    w.join([w.floats(profit), ""], "\r\n"),
                ]
            )
            sink.write_lines(lines)
            if progress is not None:
                progress(SUPERSTORE, int(start[hi]), n_lines)
            lo = hi
    return [{"dataset": SUPERSTORE, "path": FILE, "rows": sink.rows, "bytes": sink.bytes}]


def _order_sizes(rng: np.random.Generator, n_lines: int, max_size: int) -> np.ndarray:
    """Lines per order (about 2 on average, like the real file), summing to ``n_lines``."""
    parts: list[np.ndarray] = []
    total = 0
    while total < n_lines:
        m = int((n_lines - total) / 1.9 * 1.2) + 16
        s = np.minimum(rng.geometric(0.5, m), max_size).astype(np.int64)
        parts.append(s)
        total += int(s.sum())
    size = np.concatenate(parts)
    cum = np.cumsum(size)
    k = int(np.searchsorted(cum, n_lines)) + 1
    size = size[:k].copy()
    size[-1] -= int(cum[k - 1]) - n_lines
    return size
