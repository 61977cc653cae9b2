"""Online Retail in the UCI layout: ``online_retail/YYYY-MM.csv``, streamed in chunks.

Two levels, for memory: the *order plan* (one entry per invoice: time, customer, number of
lines, what a cancellation refers to) is small - about rows / 13 entries - and is held in
memory. The *lines* are never all held: each chunk of whole orders is generated, formatted and
written, then dropped. Line content is a hash of the global line index (see ``rand``), so a
cancellation can regenerate the lines of the earlier sale it reverses, and the bytes do not
depend on the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from retailhub.demo import timeline
from retailhub.demo import writer as w
from retailhub.demo.defects import (
    BAD_COUNTRIES,
    BAD_STOCK_CODES,
    IMPOSSIBLE_MONTH_DAYS,
    NON_NUMERIC_QUANTITIES,
    ONLINE_RETAIL,
    ONLINE_RETAIL_KINDS,
    ORPHAN_CODE_LOW,
    DefectLog,
    defect_count,
    sample_disjoint,
)
from retailhub.demo.master import COUNTRIES, NON_PRODUCTS, Master, non_product_rows
from retailhub.demo.rand import Picker, Stream, generator, hash_int, hash_uniform, pick_weighted

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
FIRST_INVOICE = 536365  # the first invoice of the real UCI data
CANCEL_RATE = 0.03  # share of invoices that are cancellations ("C" prefix)
MAX_LINES = 100
SALE_LINES_MEDIAN = 8.0  # lines per sale invoice ~ 1 + lognormal, mean about 13
CANCEL_WINDOW = 400  # a cancellation reverses one of the last N earlier sales
#: Share of invoices per opening hour (the UCI shop trades 7:00-20:00, peaking at noon).
HOUR_SHARES = {7: 2, 8: 6, 9: 10, 10: 14, 11: 14, 12: 16, 13: 14, 14: 10, 15: 8, 16: 4, 17: 2}
#: Line quantity = product pack size x one of these multipliers.
QTY_MULTIPLIERS = np.array([1, 2, 3, 4, 6, 8, 10, 12, 20])
QTY_MULTIPLIER_WEIGHTS = np.array([55, 20, 8, 6, 4, 3, 2, 1.5, 0.5])
DEDUPE_RESAMPLES = 16

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class OrderPlan:
    """One entry per invoice, in time order (= invoice-number order)."""

    size: np.ndarray  # lines of the invoice
    start: np.ndarray  # len n+1: global index of each invoice's first line
    day: np.ndarray  # day index in the period
    minute: np.ndarray  # minute of the day
    customer: np.ndarray  # index into the customer master
    ref: np.ndarray  # cancellations: the earlier sale they reverse; sales: -1
    rot: np.ndarray  # cancellations: first reversed line of ``ref`` (then consecutive)
    extra: np.ndarray  # index into NON_PRODUCTS for a sale's last line / a D cancellation
    month: np.ndarray  # month index (= output file)

    @property
    def n_orders(self) -> int:
        return len(self.size)

    @property
    def invoice(self) -> np.ndarray:
        return FIRST_INVOICE + np.arange(self.n_orders, dtype=np.int64)


def plan_orders(seed: int, rows: int, master: Master) -> OrderPlan:
    """Decide every invoice so that the line count is exactly ``rows``."""
    rng = generator(seed, Stream.ORDERS)
    max_size = min(MAX_LINES, len(master.products) // 2)
    sizes: list[np.ndarray] = []
    cancels: list[np.ndarray] = []
    total = 0
    while total < rows:
        m = int((rows - total) / 12 * 1.2) + 32
        cancel = rng.random(m) < CANCEL_RATE
        sale = np.minimum(
            1 + np.floor(rng.lognormal(math.log(SALE_LINES_MEDIAN), 0.9, m)), max_size
        )
        canc = np.minimum(rng.geometric(0.6, m), 3)
        s = np.where(cancel, canc, sale).astype(np.int64)
        sizes.append(s)
        cancels.append(cancel)
        total += int(s.sum())
    size = np.concatenate(sizes)
    cum = np.cumsum(size)
    n = int(np.searchsorted(cum, rows)) + 1
    size = size[:n].copy()
    size[-1] -= int(cum[n - 1]) - rows  # trim the last invoice so the total is exact
    cancel = np.concatenate(cancels)[:n]

    counts = rng.multinomial(n, timeline.day_weights("online"))
    day = np.repeat(np.arange(timeline.N_DAYS), counts)
    hours = np.array(list(HOUR_SHARES), dtype=np.int64)
    hp = np.array(list(HOUR_SHARES.values()), dtype=np.float64)
    minute = rng.choice(hours, n, p=hp / hp.sum()) * 60 + rng.integers(0, 60, n)
    ts = np.sort(day * 1440 + minute)  # invoice numbers increase with time
    day, minute = ts // 1440, ts % 1440

    cust_cum = np.cumsum(master.customers.weight)
    customer = pick_weighted(cust_cum, rng.random(n))

    ref = _cancellation_refs(rng, ts, size, cancel)
    is_cancel = ref >= 0
    customer[is_cancel] = customer[ref[is_cancel]]
    rot = np.zeros(n, dtype=np.int64)
    rot[is_cancel] = rng.integers(0, 1 << 30, int(is_cancel.sum())) % size[ref[is_cancel]]

    extra = _non_product_lines(rng, master, customer, size, ref)
    return OrderPlan(
        size=size,
        start=np.concatenate([[0], np.cumsum(size)]).astype(np.int64),
        day=day,
        minute=minute,
        customer=customer,
        ref=ref,
        rot=rot,
        extra=extra,
        month=timeline.month_index()[day],
    )


def _cancellation_refs(
    rng: np.random.Generator, ts: np.ndarray, size: np.ndarray, cancel: np.ndarray
) -> np.ndarray:
    """For each cancellation pick a strictly earlier sale with at least as many lines.

    A cancellation for which no such sale exists (e.g. the very first invoices) becomes an
    ordinary sale; its line count is unchanged, so the total stays exactly ``rows``.
    """
    ref = np.full(len(size), -1, dtype=np.int64)
    c_idx = np.flatnonzero(cancel)
    s_idx = np.flatnonzero(~cancel)
    if len(c_idx) == 0 or len(s_idx) == 0:
        return ref
    avail = np.searchsorted(ts[s_idx], ts[c_idx], side="left")  # sales strictly earlier
    chosen = np.full(len(c_idx), -1, dtype=np.int64)
    for _ in range(6):
        u = rng.random(len(c_idx))
        back = np.floor(u * np.minimum(avail, CANCEL_WINDOW)).astype(np.int64)
        cand = s_idx[np.clip(avail - 1 - back, 0, None)]
        ok = (chosen < 0) & (avail > 0) & (size[cand] >= size[c_idx])
        chosen[ok] = cand[ok]
    ref[c_idx] = chosen
    return ref


def _non_product_lines(
    rng: np.random.Generator,
    master: Master,
    customer: np.ndarray,
    size: np.ndarray,
    ref: np.ndarray,
) -> np.ndarray:
    """POST for foreign orders, a little DOT/M/BANK CHARGES, D (discount) cancellations."""
    n = len(size)
    extra = np.full(n, -1, dtype=np.int64)
    uk = master.customers.country[customer] == COUNTRIES.index("United Kingdom")
    u, v = rng.random(n), rng.random(n)
    multi_sale = (ref < 0) & (size >= 2)
    d_cancel = (ref >= 0) & (size == 1)
    picks = {
        "POST": multi_sale & ~uk & (u < 0.45),
        "BANK CHARGES": multi_sale & ~uk & (u >= 0.45) & (u < 0.46),
        "DOT": multi_sale & uk & (u < 0.008),
        "M": multi_sale & uk & (u >= 0.008) & (u < 0.012),
        "D": d_cancel & (u < 0.15),
    }
    for code, mask in picks.items():
        rows = non_product_rows(code)
        extra[mask] = rows[(v[mask] * len(rows)).astype(np.int64)]
    return extra


def defect_plan(seed: int, rows: int, rate: float) -> dict[tuple[str, str | None], np.ndarray]:
    """Global line indices of each defect kind, plus ``"originals"`` of the duplicates."""
    k = defect_count(rate, rows, len(ONLINE_RETAIL_KINDS))
    rng = generator(seed, Stream.OR_DEFECTS)
    groups = sample_disjoint(rng, rows, len(ONLINE_RETAIL_KINDS) + 1, k, "online_retail")
    plan: dict[tuple[str, str | None], np.ndarray] = dict(
        zip(ONLINE_RETAIL_KINDS, groups[:-1], strict=True)
    )
    plan[("duplicate_row", None)] = groups[-1]  # the clean originals that get copied
    return plan


def customers_with_clean_lines(
    plan: OrderPlan, defects: dict[tuple[str, str | None], np.ndarray]
) -> np.ndarray:
    """Master indices of customers that keep at least one defect-free line in online_retail.

    Behaviour data only uses these, so every clean behaviour customer is found in sales even
    after the quality gate quarantines the defective lines.
    """
    bad = [v for k, v in defects.items() if k != ("duplicate_row", None)]
    bad_lines = np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)
    order_of = np.searchsorted(plan.start, bad_lines, side="right") - 1
    bad_per_order = np.bincount(order_of, minlength=plan.n_orders)
    clean_orders = plan.size > bad_per_order
    return np.unique(plan.customer[clean_orders])


class _Tables:
    """Pre-formatted field values, one per product / customer (built once, small)."""

    def __init__(self, master: Master) -> None:
        p, c = master.products, master.customers
        codes = p.codes + [code for code, _, _ in NON_PRODUCTS]
        descs = [w.csv_field(x) for x in p.names + [d for _, d, _ in NON_PRODUCTS]]
        cents = np.concatenate([p.price_cents, [pc for _, _, pc in NON_PRODUCTS]])
        prices = [repr(x / 100) for x in cents.tolist()]  # 2.55, 2.1, 18.0 like UCI
        self.head = w.strings([f"{a},{b}" for a, b in zip(codes, descs, strict=True)])
        self.head_nodesc = w.strings([f"{a}," for a in codes])
        self.desc = w.strings(descs)
        self.price = w.strings(prices)
        self.neg_price = w.strings(["-" + x for x in prices])
        self.pack = np.concatenate([p.pack, np.ones(len(NON_PRODUCTS), dtype=np.int64)])
        ids = [f"{i}.0" for i in c.ids.tolist()]  # CustomerID is written as a float
        country = [w.csv_field(COUNTRIES[i]) for i in c.country.tolist()]
        self.cust_id = w.strings(ids)
        self.tail = w.strings([f"{i},{k}\n" for i, k in zip(ids, country, strict=True)])
        self.tail_nocust = w.strings([f",{k}\n" for k in country])
        self.day = w.strings([d + " " for d in timeline.iso_dates()])
        self.year = w.strings([str(y) for y in timeline.year_of_day().tolist()])
        self.clock = w.strings(timeline.clock_times())
        self.prefix = w.strings(["", "C"])
        self.bad_code = w.strings(list(BAD_STOCK_CODES))
        self.bad_country = w.strings([x + "\n" for x in BAD_COUNTRIES])
        self.bad_qty = w.strings(list(NON_NUMERIC_QUANTITIES))
        self.bad_md = w.strings(list(IMPOSSIBLE_MONTH_DAYS))


class OnlineRetailWriter:
    """Generates and writes the monthly files from an order plan and a defect plan."""

    def __init__(
        self,
        seed: int,
        master: Master,
        plan: OrderPlan,
        defects: dict[tuple[str, str | None], np.ndarray],
        chunk_lines: int,
    ) -> None:
        self.seed = seed
        self.plan = plan
        self.defects = defects
        self.chunk_lines = max(1, chunk_lines)
        self.n_products = len(master.products)
        self.pick_product = Picker(master.products.weight)
        self.pick_mult = Picker(QTY_MULTIPLIER_WEIGHTS)
        self.t = _Tables(master)

    # -- line content ---------------------------------------------------------------------
    def sale_lines(self, orders: np.ndarray) -> tuple[np.ndarray, ...]:
        """(order slot, line number, product, quantity) of the lines of sale ``orders``."""
        plan = self.plan
        sizes = plan.size[orders]
        grp = np.repeat(np.arange(len(orders)), sizes)
        first = np.cumsum(sizes) - sizes
        j = np.arange(len(grp)) - first[grp]
        g = plan.start[orders][grp] + j
        product = self.pick_product(hash_uniform(self.seed, Stream.LINE_PRODUCT, g))
        product = dedupe(self.seed, Stream.LINE_DEDUPE, grp, product, g, self.n_products)
        ex = plan.extra[orders]
        has = ex >= 0
        product[first[has] + sizes[has] - 1] = self.n_products + ex[has]
        mult_idx = self.pick_mult(hash_uniform(self.seed, Stream.LINE_QTY, g))
        qty = self.t.pack[product] * QTY_MULTIPLIERS[mult_idx]
        return grp, j, product, qty

    def cancel_lines(self, orders: np.ndarray) -> tuple[np.ndarray, ...]:
        """Lines of cancellations: consecutive lines of the referenced sale, negated."""
        plan = self.plan
        refs = plan.ref[orders]
        _, _, rprod, rqty = self.sale_lines(refs)
        rsize = plan.size[refs]
        rfirst = np.cumsum(rsize) - rsize
        csize = plan.size[orders]
        grp = np.repeat(np.arange(len(orders)), csize)
        j = np.arange(len(grp)) - (np.cumsum(csize) - csize)[grp]
        src = rfirst[grp] + (plan.rot[orders][grp] + j) % rsize[grp]
        return grp, j, rprod[src], -rqty[src]

    def chunk_content(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order slot, product, quantity) of every line of orders ``lo..hi-1``."""
        plan = self.plan
        n_lines = int(plan.start[hi] - plan.start[lo])
        line_order = np.repeat(np.arange(hi - lo), plan.size[lo:hi])
        product = np.empty(n_lines, dtype=np.int64)
        qty = np.empty(n_lines, dtype=np.int64)
        orders = np.arange(lo, hi)
        base = plan.start[lo:hi] - plan.start[lo]
        is_cancel = plan.ref[lo:hi] >= 0
        has_extra = plan.extra[lo:hi] >= 0
        parts = (
            (~is_cancel, self.sale_lines),
            (is_cancel & ~has_extra, self.cancel_lines),
        )
        for mask, fn in parts:
            grp, j, p, q = fn(orders[mask])
            pos = base[mask][grp] + j
            product[pos], qty[pos] = p, q
        discount = is_cancel & has_extra  # a single "D" line, Quantity -1
        pos = base[discount]
        product[pos] = self.n_products + plan.extra[lo:hi][discount]
        qty[pos] = -1
        return line_order, product, qty

    # -- formatting -----------------------------------------------------------------------
    def _in_chunk(self, key: tuple[str, str | None], g0: int, g1: int) -> np.ndarray:
        idx = self.defects.get(key, np.zeros(0, dtype=np.int64))
        return idx[np.searchsorted(idx, g0) : np.searchsorted(idx, g1)] - g0

    def format_chunk(self, lo: int, hi: int) -> tuple[pa.StringArray, dict, np.ndarray]:
        """CSV lines of orders ``lo..hi-1`` with defects applied (duplicates not yet added)."""
        plan, t, seed = self.plan, self.t, self.seed
        line_order, product, qty = self.chunk_content(lo, hi)
        g0, g1 = int(plan.start[lo]), int(plan.start[hi])
        cust = plan.customer[lo:hi][line_order]
        pos = {k: self._in_chunk(k, g0, g1) for k in self.defects}

        def h(p: np.ndarray, n: int) -> np.ndarray:
            return hash_int(seed, Stream.OR_DEFECT_VALUE, p + g0, n)

        p_bad_code = pos[("bad_code", "stock_code")]
        p_orphan = pos[("orphan_key", "stock_code")]
        p_nodesc = pos[("missing_value", "description")]
        orphan_codes = ORPHAN_CODE_LOW + h(p_orphan, 100000 - ORPHAN_CODE_LOW)
        head_pos = np.concatenate([p_nodesc, p_bad_code, p_orphan])
        head_val = pa.concat_arrays(
            [
                w.take(t.head_nodesc, product[p_nodesc]),
                w.join(
                    [
                        w.take(t.bad_code, h(p_bad_code, len(BAD_STOCK_CODES))),
                        w.take(t.desc, product[p_bad_code]),
                    ]
                ),
                w.join([w.ints(orphan_codes), w.take(t.desc, product[p_orphan])]),
            ]
        )
        p_nocust = pos[("missing_value", "customer_id")]
        p_country = pos[("bad_code", "country")]
        tail_pos = np.concatenate([p_nocust, p_country])
        tail_val = pa.concat_arrays(
            [
                w.take(t.tail_nocust, cust[p_nocust]),
                w.join(
                    [
                        w.take(t.cust_id, cust[p_country]),
                        w.take(t.bad_country, h(p_country, len(BAD_COUNTRIES))),
                    ]
                ),
            ]
        )
        p_date = pos[("impossible_date", "invoice_at")]
        day_l = plan.day[lo:hi][line_order[p_date]]
        min_l = plan.minute[lo:hi][line_order[p_date]]
        date_val = w.join(
            [
                w.take(t.year, day_l),
                w.take(t.bad_md, h(p_date, len(IMPOSSIBLE_MONTH_DAYS))),
                w.take(t.clock, min_l),
            ],
            "",
        )
        p_price = pos[("negative_price", "unit_price")]
        p_qty = pos[("non_numeric", "quantity")]

        is_cancel = (plan.ref[lo:hi] >= 0).astype(np.int64)
        invoice = w.join([w.take(t.prefix, is_cancel), w.ints(plan.invoice[lo:hi])], "")
        stamp = w.join([w.take(t.day, plan.day[lo:hi]), w.take(t.clock, plan.minute[lo:hi])], "")
        lines = w.join(
            [
                w.take(invoice, line_order),
                w.take_override(t.head, product, head_pos, head_val),
                w.override(
                    w.ints(qty), p_qty, w.take(t.bad_qty, h(p_qty, len(NON_NUMERIC_QUANTITIES)))
                ),
                w.take_override(stamp, line_order, p_date, date_val),
                w.take_override(t.price, product, p_price, w.take(t.neg_price, product[p_price])),
                w.take_override(t.tail, cust, tail_pos, tail_val),
            ]
        )
        return lines, pos, pos.get(("duplicate_row", None), np.zeros(0, dtype=np.int64))

    # -- files ----------------------------------------------------------------------------
    def write(self, out_dir: Path, log: DefectLog, progress: Progress | None) -> list[dict]:
        """Write every non-empty month; returns ``{dataset, path, rows, bytes}`` per file."""
        plan = self.plan
        labels = timeline.month_labels()
        bounds = np.searchsorted(plan.month, np.arange(timeline.N_MONTHS + 1))
        total = int(plan.start[-1])
        files: list[dict] = []
        for m in range(timeline.N_MONTHS):
            m_lo, m_hi = int(bounds[m]), int(bounds[m + 1])
            if m_lo == m_hi:
                continue
            rel = f"{ONLINE_RETAIL}/{labels[m]}.csv"
            with w.CsvSink(out_dir / rel, HEADER) as sink:
                lo = m_lo
                while lo < m_hi:
                    limit = plan.start[lo] + self.chunk_lines
                    hi = int(np.searchsorted(plan.start, limit, side="right")) - 1
                    hi = min(max(hi, lo + 1), m_hi)
                    self._write_chunk(sink, rel, lo, hi, log)
                    if progress is not None:
                        progress(ONLINE_RETAIL, int(plan.start[hi]), total)
                    lo = hi
            files.append(
                {"dataset": ONLINE_RETAIL, "path": rel, "rows": sink.rows, "bytes": sink.bytes}
            )
        return files

    def _write_chunk(self, sink: w.CsvSink, rel: str, lo: int, hi: int, log: DefectLog) -> None:
        lines, pos, dups = self.format_chunk(lo, hi)
        offset = sink.rows

        def final_line(p: np.ndarray) -> np.ndarray:
            """1-based line in the file once the duplicate copies are inserted."""
            return offset + p + np.searchsorted(dups, p, side="left") + 1

        if len(dups):
            rep = np.ones(len(lines), dtype=np.int64)
            rep[dups] = 2  # the copy follows its original immediately
            lines = w.take(lines, np.repeat(np.arange(len(lines)), rep))
        sink.write_lines(lines)
        for key, p in pos.items():
            if key == ("duplicate_row", None):
                log.add(ONLINE_RETAIL, key, rel, final_line(p) + 1, duplicate_of=final_line(p))
            else:
                log.add(ONLINE_RETAIL, key, rel, final_line(p))


def dedupe(
    seed: int, stream: int, grp: np.ndarray, product: np.ndarray, g: np.ndarray, n: int
) -> np.ndarray:
    """Make products distinct within each order (so no two lines of an invoice are equal).

    Later duplicates are redrawn uniformly from a hash of their line index; only orders that
    still have duplicates are re-checked, so the result for an order depends on that order
    alone (chunking-independent). After a few rounds a deterministic +1 walk finishes the job
    (orders have at most n/2 lines, so it terminates).
    """
    active = np.arange(len(product))
    it = 0
    while len(active):
        key = grp[active] * n + product[active]
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup = np.zeros(len(sk), dtype=bool)
        dup[1:] = sk[1:] == sk[:-1]
        if not dup.any():
            break
        pos = active[order[dup]]
        if it < DEDUPE_RESAMPLES:
            product[pos] = hash_int(seed, stream + it, g[pos], n)
        else:
            product[pos] = (product[pos] + 1) % n
        active = np.flatnonzero(np.isin(grp, np.unique(grp[pos])))
        it += 1
    return product
