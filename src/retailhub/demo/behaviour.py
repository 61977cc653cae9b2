"""Multi-channel customer behaviour: ``customer_behaviour/YYYY-MM.csv``.

One row per (customer, day, channel) - unique - with sessions, page views, cart adds, orders
and spend, plus the customer's attributes denormalised (as in the public "shopping behaviour"
file, which is also CRLF and one row per customer). About ``rows // 5`` rows in total, generated
month by month. Only customers that have at least one defect-free Online Retail line appear,
so every clean behaviour customer conforms to sales; heavy buyers are also heavy browsers
(same Pareto weights). With a defect rate > 0 an extra, otherwise valid
``stale-YYYY-MM.csv`` gets an old modification time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from retailhub.demo import timeline, vocab
from retailhub.demo import writer as w
from retailhub.demo.defects import (
    BEHAVIOUR_KINDS,
    CUSTOMER_BEHAVIOUR,
    STALE_AGE_DAYS,
    DefectLog,
    defect_count,
    sample_disjoint,
)
from retailhub.demo.master import COUNTRIES, Master
from retailhub.demo.rand import Picker, Stream, generator

HEADER = (
    "customer_id,activity_date,channel,sessions,page_views,cart_adds,orders,spend,"
    "customer_name,email,age,gender,country,loyalty_tier,signup_date\r\n"
)
STORE = vocab.CHANNELS.index("store")
ORPHAN_ID_GAP = 50_000  # orphan ids start this far above the last master id

Progress = Callable[[str, int, int], None]


def n_rows_for(rows: int) -> int:
    return rows // 5


def write_behaviour(
    seed: int,
    rows: int,
    rate: float,
    master: Master,
    active: np.ndarray,
    out_dir: Path,
    log: DefectLog,
    progress: Progress | None,
) -> list[dict]:
    """Write the monthly files (+ the stale file); ``active`` = master indices allowed."""
    n_rows = n_rows_for(rows)
    rng = generator(seed, Stream.BEHAVIOUR)
    day_w = timeline.day_weights("behaviour")
    month = timeline.month_index()
    counts = rng.multinomial(n_rows, np.bincount(month, weights=day_w))
    stale_month = int(rng.integers(timeline.N_MONTHS)) if rate > 0 else -1
    n_stale = int(np.clip(n_rows // 100, 5, 200))

    k = defect_count(rate, n_rows, len(BEHAVIOUR_KINDS))
    log.expect(CUSTOMER_BEHAVIOUR, BEHAVIOUR_KINDS, k)
    drng = generator(seed, Stream.BEHAVIOUR_DEFECTS)
    no_email, orphan = sample_disjoint(drng, n_rows, 2, k, CUSTOMER_BEHAVIOUR)
    orphan_base = int(master.customers.ids.max()) + ORPHAN_ID_GAP
    orphan_ids = orphan_base + np.sort(drng.choice(max(10 * k, 1000), k, replace=False))

    t = _tables(master, active)
    pick_cust = Picker(master.customers.weight[active])
    pick_chan = Picker(np.asarray(vocab.CHANNEL_SHARES))
    labels = timeline.month_labels()
    files: list[dict] = []
    offset = 0  # global index of the month's first main row (defect plan coordinates)
    for m in range(timeline.N_MONTHS):
        days = np.flatnonzero(month == m)
        extra = n_stale if m == stale_month else 0
        mrng = generator(seed, Stream.BEHAVIOUR, 1 + m)
        keys = _sample_keys(mrng, int(counts[m]) + extra, Picker(day_w[days]), pick_cust, pick_chan)
        stale = np.zeros(len(keys), dtype=bool)
        if extra:
            stale[mrng.choice(len(keys), extra, replace=False)] = True
        lines = _format(mrng, keys, days, len(active), t)
        main = np.flatnonzero(~stale)
        lo, hi = np.searchsorted(no_email, offset), np.searchsorted(no_email, offset + len(main))
        p_mail = no_email[lo:hi] - offset
        lo, hi = np.searchsorted(orphan, offset), np.searchsorted(orphan, offset + len(main))
        p_orph, ids_orph = orphan[lo:hi] - offset, orphan_ids[lo:hi]
        cust = (keys // len(vocab.CHANNELS)) % len(active)
        main_lines = w.join(
            [
                w.override(w.take(t["id"], cust[main]), p_orph, w.ints(ids_orph)),
                w.take(lines, main),
                w.take_override(
                    t["tail"], cust[main], p_mail, w.take(t["tail_noemail"], cust[main][p_mail])
                ),
            ],
            "",
        )
        offset += len(main)
        if len(main):
            rel = f"{CUSTOMER_BEHAVIOUR}/{labels[m]}.csv"
            with w.CsvSink(out_dir / rel, HEADER) as sink:
                sink.write_lines(main_lines)
            files.append(_info(rel, sink))
            log.add(CUSTOMER_BEHAVIOUR, BEHAVIOUR_KINDS[0], rel, p_mail + 1)
            log.add(CUSTOMER_BEHAVIOUR, BEHAVIOUR_KINDS[1], rel, p_orph + 1)
        if extra:
            rel = f"{CUSTOMER_BEHAVIOUR}/stale-{labels[m]}.csv"
            sidx = np.flatnonzero(stale)
            stale_lines = w.join(
                [w.take(t["id"], cust[sidx]), w.take(lines, sidx), w.take(t["tail"], cust[sidx])],
                "",
            )
            with w.CsvSink(out_dir / rel, HEADER) as sink:
                sink.write_lines(stale_lines)
            old = time.time() - STALE_AGE_DAYS * 86400
            os.utime(out_dir / rel, (old, old))
            files.append(_info(rel, sink))
            log.add_stale(rel, STALE_AGE_DAYS)
        if progress is not None:
            progress(CUSTOMER_BEHAVIOUR, offset, n_rows)
    return files


def _info(rel: str, sink: w.CsvSink) -> dict:
    return {"dataset": CUSTOMER_BEHAVIOUR, "path": rel, "rows": sink.rows, "bytes": sink.bytes}


def _tables(master: Master, active: np.ndarray) -> dict[str, w.StrArray]:
    """Per active customer: the id and the attribute tail (with and without e-mail)."""
    c = master.customers

    def col(values: tuple[str, ...], idx: np.ndarray) -> w.StrArray:
        return w.take(w.strings([w.csv_field(v) for v in values]), idx)

    before = ["", c.names()]
    after = [
        w.ints(c.age),
        col(vocab.GENDERS, c.gender),
        col(COUNTRIES, c.country),
        col(vocab.LOYALTY_TIERS, c.tier),
        w.join([pa.array(c.signup, type=pa.string()), ""], "\r\n"),
    ]
    tail = w.join([*before, c.emails(), *after])
    tail_noemail = w.join([*before, "", *after])
    return {
        "id": w.take(w.ints(c.ids), active),
        "tail": w.take(tail, active),
        "tail_noemail": w.take(tail_noemail, active),
        "date": w.strings(timeline.iso_dates()),
        "channel": w.strings(list(vocab.CHANNELS)),
    }


def _sample_keys(
    rng: np.random.Generator,
    target: int,
    pick_day: Picker,
    pick_cust: Picker,
    pick_chan: Picker,
) -> np.ndarray:
    """``target`` distinct keys ``(day * n_cust + cust) * 4 + channel``, sorted.

    Drawn with the day, customer and channel weights; duplicates are dropped and topped up.
    If the month is nearly saturated the remainder is drawn uniformly (always terminates).
    """
    n_days, n_cust, n_chan = len(pick_day.cum), len(pick_cust.cum), len(pick_chan.cum)
    space = n_days * n_cust * n_chan
    if target > space:
        raise ValueError("too few customers for the requested behaviour rows")
    keys = np.zeros(0, dtype=np.int64)
    for attempt in range(60):
        need = target - len(keys)
        if need <= 0:
            break
        m = int(need * 1.3) + 16
        if attempt < 40:
            d = pick_day(rng.random(m))
            c = pick_cust(rng.random(m))
            ch = pick_chan(rng.random(m))
            new = (d * n_cust + c) * n_chan + ch
        else:
            new = rng.integers(0, space, m)
        both = np.concatenate([keys, new])
        _, first = np.unique(both, return_index=True)
        keys = both[np.sort(first)]  # keep draw order, so truncation is unbiased
    if len(keys) < target:
        rest = np.setdiff1d(np.arange(space), keys)
        keys = np.concatenate([keys, rng.choice(rest, target - len(keys), replace=False)])
    return np.sort(keys[:target])


def _format(
    rng: np.random.Generator,
    keys: np.ndarray,
    days: np.ndarray,
    n_cust: int,
    t: dict[str, w.StrArray],
) -> w.StrArray:
    """Everything from ``,activity_date`` to ``,spend`` of each key (id and tail added later)."""
    n = len(keys)
    chan = keys % 4
    day = days[keys // 4 // n_cust]
    store = chan == STORE
    sessions = rng.geometric(0.45, n)
    online_pv = sessions * (1 + rng.poisson(4, n))
    cart = np.where(store, 1 + rng.poisson(1.5, n), rng.binomial(online_pv, 0.07))
    orders = np.where(store, (rng.random(n) < 0.8).astype(np.int64), rng.binomial(cart, 0.3))
    basket = np.rint(rng.lognormal(math.log(3500), 0.6, n)).astype(np.int64)
    spend = np.where(orders > 0, orders * basket, 0)
    return w.join(
        [
            "",
            w.take(t["date"], day),
            w.take(t["channel"], chan),
            w.ints(np.where(store, 1, sessions)),
            w.ints(np.where(store, 0, online_pv)),
            w.ints(cart),
            w.ints(orders),
            w.money(spend),
        ]
    )
