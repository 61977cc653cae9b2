"""Check that an insight's SQL query, run on the published warehouse, gives its evidence.

Each insight in ``marts.mart_insights`` carries the numbers it states (``evidence``, JSON) and
a query on the published tables that backs them. ``check_insight`` runs the query and compares,
per kind, the numbers a reader would check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest


def _month(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m")


def _close(a: Any, b: Any) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)


def check_insight(run: Callable[[str], pd.DataFrame], kind: str, evidence: str, query: str) -> None:
    """Run ``query`` (``run(sql)`` returns its rows as a DataFrame, on the warehouse the
    insight was published to) and assert it reproduces ``evidence``."""
    ev = json.loads(evidence)
    result = run(query)
    assert not result.empty, (kind, query)
    if kind in ("revenue_trend", "aov_change"):
        by_month = result.assign(m=result["month"].map(_month)).set_index("m")
        if kind == "revenue_trend":
            assert _close(by_month.loc[ev["month"], "revenue"], ev["revenue"])
            assert _close(by_month.loc[ev["previous_month"], "revenue"], ev["previous_revenue"])
            if "year_ago_month" in ev:
                assert _close(by_month.loc[ev["year_ago_month"], "revenue"], ev["year_ago_revenue"])
        else:
            assert _close(by_month.loc[ev["month"], "orders"], ev["orders"])
            assert _close(by_month.loc[ev["month"], "aov"], ev["aov"])
    elif kind in ("category_change", "product_riser", "product_faller"):
        totals = result.assign(m=result["month"].map(_month)).groupby("m")["revenue"].sum()
        assert _close(totals.get(ev["month"], 0.0), ev["revenue"]), (kind, ev)
        previous = ev.get("previous_month") or (pd.Period(ev["month"], "M") - 1).strftime("%Y-%m")
        assert _close(totals.get(previous, 0.0), ev["previous_revenue"]), (kind, ev)
    elif kind == "anomaly":
        day = result.assign(d=result["date"].map(lambda v: pd.Timestamp(v).date().isoformat()))
        value = day.set_index("d").loc[ev["date"], ev["metric"]]
        assert _close(value, ev["observed"]), ev
    elif kind == "forecast":
        by_month = result.assign(m=result["month"].map(_month)).set_index("m")["revenue"]
        if "last_period" in ev:
            assert _close(by_month[ev["last_period"]], ev["last_revenue"])
        if "year_ago_period" in ev:
            assert _close(by_month[ev["year_ago_period"]], ev["year_ago_revenue"])
    elif kind in ("rfm_quiet_champions", "rfm_cant_lose", "rfm_at_risk", "churn_risk"):
        row = result.iloc[0]
        assert int(row["customers"]) == ev["customers"], ev
        assert _close(row["monetary"], ev["monetary"]), ev
        if "median_recency_days" in ev:
            assert _close(row["median_recency_days"], ev["median_recency_days"])
    elif kind == "concentration":
        positive = result[result["revenue"] > 0]
        class_a = int((positive["cumulative_share_before"].fillna(0) < 0.8 - 1e-9).sum())
        assert class_a == ev["class_a"], ev
        assert len(result) == ev["products"]
    elif kind == "model_check":
        pass  # the query lists the stored evaluation; non-empty is the check
    else:  # pragma: no cover - a new kind needs a check here
        pytest.fail(f"no evidence check for insight kind {kind!r}")
