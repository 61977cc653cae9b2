"""RFM (recency, frequency, monetary) scores and segments, in pandas and in DuckDB SQL.

Why two implementations: notebooks and tests work on frames (:func:`rfm_table`), the pipeline
computes RFM for millions of lines inside the engine (:func:`rfm_sql`). Both follow exactly the
same definitions, and a test runs both on the same data and requires identical output.

Input contract (both functions): **purchase lines only**. The caller must already have removed
cancellations, returns, bad-debt/stock adjustments, non-product lines (postage, fees) and lines
without a known customer; from ``core.fct_sales`` that is :data:`FCT_SALES_PURCHASE_FILTER`.
RFM on unfiltered lines would count a cancelled order as a purchase and lower spend by refunds.

Definitions (see ``docs/analytics.md``):

* Customers are keyed by ``(source_system, customer_id)`` when a ``source_system`` column is
  present (ids of different shops are different people), else by ``customer_id``. Scores are
  ranked **within** each source system.
* ``reference_date``: given (then lines dated on or after it are ignored: RFM "as of" that
  day), or by default the day after the last ``order_date`` of the customer's source system
  (so a source whose data ends earlier is not declared dormant).
* ``recency_days`` = reference_date - date of the last purchase, in whole days (times ignored).
* ``frequency`` = number of distinct orders; ``monetary`` = sum of the line amounts.
* Scores: within a source system, customers are ordered from worst to best on the metric
  (recency descending, frequency ascending, monetary ascending), ties broken by ``customer_id``
  ascending; with ``rank`` = 1..n in that order, ``score = 1 + floor(5 * (rank - 1) / n)``.
  So quintiles are equal-sized (sizes differ by at most one), 5 is best, and the result is
  deterministic. Consequence to know: when many customers share a value (e.g. one order), they
  are spread over several scores by customer id.
* ``fm_score = (f_score + m_score + 1) // 2`` (the mean of F and M, halves rounded up);
  ``rfm_score`` = the three digits R, F, M as text (e.g. ``'555'``).
* ``segment`` from (R, FM) with :data:`SEGMENT_GRID`; ``recommended_action`` from
  :data:`SEGMENT_ACTIONS`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from retailhub.analytics._frames import require_columns

if TYPE_CHECKING:
    import pandas as pd

#: Segment names in the order used for the categorical ``segment`` column.
SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

#: ``SEGMENT_GRID[r - 1][fm - 1]`` is the segment of a customer with R score ``r`` and FM ``fm``.
#: It is the widely published regex map on (R, FM) (``[1-2][1-2]`` Hibernating, ``[1-2][3-4]``
#: At Risk, ``[1-2]5`` Can't Lose Them, ``3[1-2]`` About to Sleep, ``33`` Need Attention,
#: ``[3-4][4-5]`` Loyal Customers, ``41`` Promising, ``51`` New Customers, ``[4-5][2-3]``
#: Potential Loyalists, ``5[4-5]`` Champions) with two refinements of the 11-segment table:
#: Champions are R 4-5 and FM 4-5 (so R4/FM4-5 is Champions, not Loyal), and R1/FM1 is Lost.
SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    # FM:  1                 2                      3                      4                  5
    ("Lost", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),  # R = 1
    ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),  # R = 2
    ("About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"),
    ("Promising", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"),  # 4
    ("New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"),
)

#: One recommended marketing action per segment (plain language for the dashboard).
SEGMENT_ACTIONS: dict[str, str] = {
    "Champions": "Reward them; ask for reviews and referrals; offer early access to new products.",
    "Loyal Customers": "Upsell higher-value products; enrol them in the loyalty programme.",
    "Potential Loyalists": "Offer membership or loyalty points; recommend related products.",
    "New Customers": "Onboard them well: welcome series, support, a reason for a second order.",
    "Promising": "Build awareness: show best sellers, offer a small incentive to return.",
    "Need Attention": "Send limited-time offers based on their past purchases.",
    "About to Sleep": "Reconnect with popular products and a moderate discount before they lapse.",
    "At Risk": "Send personalised win-back emails with offers on what they used to buy.",
    "Can't Lose Them": "Win them back personally: strong offer, ask what went wrong.",
    "Hibernating": "Offer relevant products and special discounts; avoid heavy spend.",
    "Lost": "Try one low-cost reactivation campaign; otherwise exclude from paid campaigns.",
}

#: SQL predicate that turns ``core.fct_sales`` into the purchase lines RFM expects.
FCT_SALES_PURCHASE_FILTER = (
    "customer_id IS NOT NULL AND NOT is_cancellation AND NOT is_adjustment AND is_product"
    " AND net_amount > 0"
)

RFM_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "first_order_date",
    "last_order_date",
    "reference_date",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "rfm_score",
    "segment",
    "recommended_action",
)

#: Monetary values are rounded to this many decimals before ranking, in both implementations,
#: so that float summation order (pandas vs DuckDB) cannot break a tie differently.
_MONETARY_RANK_DECIMALS = 6


def quintile_scores(rank: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``1 + floor(5 * (rank - 1) / n)`` for 1-based ranks: equal-sized quintiles, 5 = best."""
    rank = np.asarray(rank, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    return (1 + (5 * (rank - 1)) // n).astype(np.int64)


def segment_for(r_score: np.ndarray, fm_score: np.ndarray) -> np.ndarray:
    """Vectorised lookup in :data:`SEGMENT_GRID` (scores must be integers 1..5)."""
    grid = np.array(SEGMENT_GRID, dtype=object)
    r = np.asarray(r_score, dtype=np.int64)
    fm = np.asarray(fm_score, dtype=np.int64)
    if r.size and (r.min() < 1 or r.max() > 5 or fm.min() < 1 or fm.max() > 5):
        raise ValueError("scores must be between 1 and 5")
    return grid[r - 1, fm - 1]


def rfm_table(
    lines: pd.DataFrame,
    reference_date: date | None = None,
    *,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    source_col: str = "source_system",
) -> pd.DataFrame:
    """One row per customer with recency/frequency/monetary, scores, segment and action.

    ``lines``: purchase lines (see the module docstring for the filter the caller must apply)
    with ``customer_id``, ``order_id``, ``order_date`` (date or timestamp), ``net_amount`` and
    optionally ``source_system`` (other names via the ``*_col`` arguments). Fully vectorised:
    one groupby and one sort per metric, no Python loop over customers.

    Output columns: ``source_system`` (if present), then :data:`RFM_COLUMNS`; the key column is
    named ``customer_id`` whatever ``customer_col`` was. The three date columns are
    ``datetime64`` at midnight (what DuckDB returns for DATE). Rows are sorted by key.
    """
    import pandas as pd

    has_source = source_col in lines.columns
    require_columns(lines, [customer_col, order_col, date_col, amount_col], "rfm_table(lines)")
    keys = ["source_system", "customer_id"] if has_source else ["customer_id"]
    frame = pd.DataFrame(
        {
            "customer_id": lines[customer_col].to_numpy(),
            "order_id": lines[order_col].to_numpy(),
            "day": pd.to_datetime(lines[date_col]).dt.normalize().to_numpy(),
            "amount": lines[amount_col].astype(float).to_numpy(),
        }
    )
    if has_source:
        frame.insert(0, "source_system", lines[source_col].to_numpy())
    if frame["customer_id"].isna().any():
        raise ValueError("lines contain unknown (null) customers; filter them out first")
    if has_source and frame["source_system"].isna().any():
        raise ValueError("lines contain a null source_system")
    if reference_date is not None:  # "as of" the reference date: later lines do not exist yet
        frame = frame[frame["day"] < pd.Timestamp(reference_date).normalize()]

    grouped = frame.groupby(keys, sort=True, observed=True)
    rfm = grouped.agg(
        first_order_date=("day", "min"),
        last_order_date=("day", "max"),
        frequency=("order_id", "nunique"),
        monetary=("amount", "sum"),
    ).reset_index()

    if reference_date is not None:
        rfm["reference_date"] = pd.Timestamp(reference_date).normalize()
    elif has_source:
        last_by_source = frame.groupby("source_system", observed=True)["day"].max()
        rfm["reference_date"] = rfm["source_system"].map(last_by_source) + pd.Timedelta(days=1)
    else:
        rfm["reference_date"] = frame["day"].max() + pd.Timedelta(days=1)
    rfm["recency_days"] = (rfm["reference_date"] - rfm["last_order_date"]).dt.days.astype("int64")
    rfm["frequency"] = rfm["frequency"].astype("int64")

    # Ranks: rfm is sorted by (source_system, customer_id), so a row's position is its
    # customer-id order within its source; np.lexsort on (partition, metric, position) gives the
    # worst-to-best order with ties broken by customer id, in O(n log n) on integer/float arrays.
    position = np.arange(len(rfm))
    if has_source:
        part_code = pd.factorize(rfm["source_system"], sort=True)[0]
    else:
        part_code = np.zeros(len(rfm), dtype=np.int64)
    sizes = np.bincount(part_code) if len(rfm) else np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(rfm) else sizes
    n = sizes[part_code]
    metrics = {
        "r_score": -rfm["recency_days"].to_numpy(dtype=float),  # higher recency = worse
        "f_score": rfm["frequency"].to_numpy(dtype=float),
        "m_score": rfm["monetary"].round(_MONETARY_RANK_DECIMALS).to_numpy(dtype=float),
    }
    for score_col, values in metrics.items():
        order = np.lexsort((position, values, part_code))
        rank = np.empty(len(rfm), dtype=np.int64)
        rank[order] = np.arange(len(rfm)) - starts[part_code[order]] + 1
        rfm[score_col] = quintile_scores(rank, n)

    for col in ("first_order_date", "last_order_date", "reference_date"):
        rfm[col] = rfm[col].astype("datetime64[us]")  # DuckDB's DATE -> pandas unit
    rfm["fm_score"] = (rfm["f_score"] + rfm["m_score"] + 1) // 2
    rfm["rfm_score"] = (
        rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)
    )
    rfm["segment"] = segment_for(rfm["r_score"].to_numpy(), rfm["fm_score"].to_numpy())
    rfm["recommended_action"] = rfm["segment"].map(SEGMENT_ACTIONS)
    columns = (["source_system"] if has_source else []) + list(RFM_COLUMNS)
    return rfm[columns].reset_index(drop=True)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _segment_case_sql() -> str:
    whens = []
    for r in range(1, 6):
        for fm in range(1, 6):
            name = _sql_str(SEGMENT_GRID[r - 1][fm - 1])
            whens.append(f"WHEN r_score = {r} AND fm_score = {fm} THEN {name}")
    return "CASE " + " ".join(whens) + " END"


def _action_case_sql() -> str:
    whens = [
        f"WHEN {_sql_str(seg)} THEN {_sql_str(action)}" for seg, action in SEGMENT_ACTIONS.items()
    ]
    return "CASE segment " + " ".join(whens) + " END"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rfm_sql(
    source: str = "core.fct_sales",
    reference_date: date | None = None,
    *,
    where: str | None = FCT_SALES_PURCHASE_FILTER,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    source_col: str | None = "source_system",
) -> str:
    """DuckDB SQL computing exactly what :func:`rfm_table` computes, inside the engine.

    ``source`` is a table/view name or a parenthesised subquery; ``where`` (default: the
    purchase-line filter for ``core.fct_sales``) is applied to it — pass ``None`` when the source
    is already filtered. ``source_col=None`` treats the data as a single source system. The
    statement returns the same columns, in the same order, as :func:`rfm_table`.

    Amounts are summed in their own type and the sum is cast to DOUBLE: for DECIMAL money (as in
    ``core.fct_sales``) the sum is exact, so a parallel aggregation cannot change the last bits
    of ``monetary`` from one run to the next.
    """
    src_select = f"{_ident(source_col)} AS source_system, " if source_col else ""
    keys = "source_system, customer_id" if source_col else "customer_id"
    part = "PARTITION BY source_system " if source_col else ""
    conditions = [f"({where})"] if where else []
    if reference_date is not None:
        ref_sql = f"DATE '{reference_date.isoformat()}'"
        conditions.append(f"CAST({_ident(date_col)} AS DATE) < {ref_sql}")
    else:
        ref_sql = f"CAST(max(last_order_date) OVER ({part}) + INTERVAL 1 DAY AS DATE)"
    where_sql = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    out_source = "source_system, " if source_col else ""
    return f"""
WITH purchase_lines AS (
    SELECT {src_select}{_ident(customer_col)} AS customer_id,
           {_ident(order_col)} AS order_id,
           CAST({_ident(date_col)} AS DATE) AS order_day,
           {_ident(amount_col)} AS amount
    FROM {source}
    {where_sql}
),
per_customer AS (
    SELECT {keys},
           min(order_day) AS first_order_date,
           max(order_day) AS last_order_date,
           count(DISTINCT order_id) AS frequency,
           CAST(sum(amount) AS DOUBLE) AS monetary
    FROM purchase_lines
    GROUP BY {keys}
),
with_reference AS (
    SELECT *, {ref_sql} AS reference_date FROM per_customer
),
with_recency AS (
    SELECT *, CAST(date_diff('day', last_order_date, reference_date) AS BIGINT) AS recency_days,
           round(monetary, {_MONETARY_RANK_DECIMALS}) AS monetary_rank_value,
           count(*) OVER ({part}) AS n_customers
    FROM with_reference
),
scored AS (
    SELECT *,
        CAST(1 + (5 * (row_number() OVER ({part}ORDER BY recency_days DESC, customer_id) - 1))
             // n_customers AS BIGINT) AS r_score,
        CAST(1 + (5 * (row_number() OVER ({part}ORDER BY frequency ASC, customer_id) - 1))
             // n_customers AS BIGINT) AS f_score,
        CAST(1 + (5 * (row_number() OVER ({part}ORDER BY monetary_rank_value ASC, customer_id)
             - 1)) // n_customers AS BIGINT) AS m_score
    FROM with_recency
),
segmented AS (
    SELECT *, CAST((f_score + m_score + 1) // 2 AS BIGINT) AS fm_score FROM scored
),
named AS (
    SELECT *, {_segment_case_sql()} AS segment FROM segmented
)
SELECT {out_source}customer_id, first_order_date, last_order_date, reference_date,
       recency_days, CAST(frequency AS BIGINT) AS frequency, monetary,
       r_score, f_score, m_score, fm_score,
       CAST(r_score AS VARCHAR) || CAST(f_score AS VARCHAR) || CAST(m_score AS VARCHAR)
           AS rfm_score,
       segment,
       {_action_case_sql()} AS recommended_action
FROM named
ORDER BY {keys}
""".strip()
