"""Product analytics: ABC (Pareto) classes and period-over-period growth.

Why: assortment decisions start from "which few products make most of the revenue" (ABC) and
"what is growing or shrinking" (month over month, year over year). Both are pure, vectorised
frame transforms; the marts feed them revenue per product and per period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from retailhub.analytics._frames import require_columns

if TYPE_CHECKING:
    import pandas as pd

#: Relative tolerance for the ABC boundaries, so 0.4 + 0.4 counts as exactly 0.8.
_ABC_TOL = 1e-9


def abc_classes(
    revenue_by_product: pd.Series | pd.DataFrame,
    *,
    product_col: str = "product_id",
    revenue_col: str = "revenue",
    a_share: float = 0.80,
    b_share: float = 0.95,
) -> pd.DataFrame:
    """Pareto ABC class per product.

    Input: a Series (index = product id, values = revenue) or a frame with ``product_col`` and
    ``revenue_col``, one row per product (aggregate first).

    Rule (precise): products are ranked by revenue descending, ties by product id ascending.
    ``cumulative_share_before`` is the share of total positive revenue made by the products
    ranked strictly above. A product is **A** if ``cumulative_share_before < a_share``, **B** if
    it is ``< b_share``, else **C**. So A is the *smallest* top set reaching at least 80 % of
    revenue (the product that crosses 80 % is A, a product starting exactly at 80 % is B), the
    best product is always A, and B then covers up to the next 15 %. Comparisons use a relative
    tolerance of 1e-9 so float rounding cannot move a product across a boundary. Products with
    revenue <= 0 (returns exceeding sales) are always C and do not count in the total.

    Output columns: product id, revenue, rank (1 = best), share, cumulative_share (inclusive),
    cumulative_share_before, abc_class; sorted by rank.
    """
    import pandas as pd

    if not 0 < a_share < b_share <= 1:
        raise ValueError("need 0 < a_share < b_share <= 1")
    if isinstance(revenue_by_product, pd.Series):
        frame = pd.DataFrame(
            {
                product_col: revenue_by_product.index.to_numpy(),
                revenue_col: revenue_by_product.to_numpy(),
            }
        )
    else:
        require_columns(revenue_by_product, [product_col, revenue_col], "abc_classes")
        frame = revenue_by_product[[product_col, revenue_col]].copy()
    if frame[product_col].duplicated().any():
        raise ValueError("abc_classes expects one row per product; aggregate revenue first")
    frame[revenue_col] = frame[revenue_col].astype(float)
    frame = frame.sort_values(
        [revenue_col, product_col], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    positive = frame[revenue_col].clip(lower=0).to_numpy()
    total = positive.sum()
    cum = np.cumsum(positive)
    before = cum - positive
    if total > 0:
        share, cum_share, before_share = positive / total, cum / total, before / total
    else:
        share = cum_share = before_share = np.zeros(len(frame))
    tol = _ABC_TOL
    cls = np.where(
        before_share < a_share - tol, "A", np.where(before_share < b_share - tol, "B", "C")
    )
    cls = np.where(positive > 0, cls, "C")
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["share"] = share
    frame["cumulative_share"] = cum_share
    frame["cumulative_share_before"] = before_share
    frame["abc_class"] = cls
    return frame


def period_growth(
    frame: pd.DataFrame,
    *,
    period_col: str = "month",
    value_col: str = "revenue",
    group_cols: Sequence[str] = (),
    lag: int = 1,
    freq: Literal["D", "W", "M", "Q", "Y"] = "M",
) -> pd.DataFrame:
    """Add ``previous_value``, ``change`` and ``growth`` versus ``lag`` periods earlier.

    Periods are matched by calendar (``period_col`` converted to a pandas Period of ``freq``),
    not by row position, so a missing month gives ``previous_value = NaN`` rather than comparing
    with the wrong month. ``growth = (value - previous) / |previous|`` as a fraction (0.18 =
    +18 %); NaN when the previous value is missing or 0. One row per (group, period) expected.
    """
    import pandas as pd

    group_cols = list(group_cols)
    require_columns(frame, [period_col, value_col, *group_cols], "period_growth")
    out = frame.copy()
    period = pd.PeriodIndex(pd.to_datetime(out[period_col]), freq=freq)
    keys = pd.DataFrame({c: out[c].to_numpy() for c in group_cols})
    keys["__period"] = period.to_numpy()
    if keys.duplicated().any():
        raise ValueError("period_growth expects one row per (group, period)")
    previous = keys.copy()
    previous["__period"] = (period + lag).to_numpy()  # this row is the "previous" of period+lag
    previous["previous_value"] = out[value_col].astype(float).to_numpy()
    merged = keys.merge(previous, on=[*group_cols, "__period"], how="left")
    out["previous_value"] = merged["previous_value"].to_numpy()
    value = out[value_col].astype(float)
    out["change"] = value - out["previous_value"]
    prev = out["previous_value"]
    out["growth"] = np.where(prev.notna() & (prev != 0), out["change"] / prev.abs(), np.nan)
    return out


def month_over_month(
    frame: pd.DataFrame,
    *,
    period_col: str = "month",
    value_col: str = "revenue",
    group_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """Growth versus the previous calendar month (see :func:`period_growth`)."""
    return period_growth(
        frame, period_col=period_col, value_col=value_col, group_cols=group_cols, lag=1, freq="M"
    )


def year_over_year(
    frame: pd.DataFrame,
    *,
    period_col: str = "month",
    value_col: str = "revenue",
    group_cols: Sequence[str] = (),
    freq: Literal["M", "Q"] = "M",
) -> pd.DataFrame:
    """Growth versus the same month (or quarter) one year earlier (see :func:`period_growth`)."""
    lag = 12 if freq == "M" else 4
    return period_growth(
        frame,
        period_col=period_col,
        value_col=value_col,
        group_cols=group_cols,
        lag=lag,
        freq=freq,
    )
