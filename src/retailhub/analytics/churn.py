"""Churn prediction: features at a cutoff, label over a horizon, model, honest evaluation.

Why this shape: "churn" in non-contractual retail is not observed, it is defined. Here a
customer known before ``cutoff`` has churned (label 1) when they make **no purchase in the
``horizon_days`` days starting at the cutoff**. Features use only lines strictly before the
cutoff, so nothing from the label window leaks into them. The evaluation is time-separated:
train with cutoff ``c1``, evaluate with ``c2 = c1 + horizon`` (:func:`time_split_evaluation`),
which is how the model will be used (trained on the past, scored on today). A recency-only
baseline is always reported next to the model: if the model does not beat "days since last
order", it is not worth running.

Input lines are purchase lines (no cancellations/adjustments/unknown customers), like RFM.
``scikit-learn`` is imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from retailhub.analytics._frames import require_columns

if TYPE_CHECKING:
    import pandas as pd

#: ``churn_risk`` thresholds on ``churn_probability``: low < 0.4 <= medium < 0.7 <= high.
RISK_THRESHOLDS: tuple[float, float] = (0.4, 0.7)

#: Feature columns produced by :func:`churn_features` (``distinct_products`` only when a product
#: column is given).
FEATURE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "purchase_days",
    "avg_days_between_purchases",
    "recency_to_gap_ratio",
    "orders_last_30d",
    "orders_last_90d",
    "orders_prev_90d",
    "revenue_last_90d",
    "trend",
    "distinct_products",
)


@dataclass
class ChurnReport:
    """Evaluation of a churn model on one labelled population."""

    n_customers: int
    churn_rate: float
    roc_auc: float
    baseline_auc: float
    auc_improvement: float
    brier: float
    precision_at_top_decile: float
    lift_at_top_decile: float
    calibration: pd.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers (for logs, JSON and the docs); the calibration table as records."""
        out = {k: v for k, v in self.__dict__.items() if k != "calibration"}
        out["calibration"] = self.calibration.to_dict(orient="records")
        return out


def _keys(lines: pd.DataFrame, source_col: str) -> list[str]:
    return ["source_system", "customer_id"] if source_col in lines.columns else ["customer_id"]


def _normalise_lines(
    lines: pd.DataFrame,
    customer_col: str,
    order_col: str,
    date_col: str,
    amount_col: str,
    product_col: str | None,
    source_col: str,
) -> pd.DataFrame:
    import pandas as pd

    cols = [customer_col, order_col, date_col, amount_col]
    if product_col is not None:
        cols.append(product_col)
    require_columns(lines, cols, "churn lines")
    frame = pd.DataFrame(
        {
            "customer_id": lines[customer_col].to_numpy(),
            "order_id": lines[order_col].to_numpy(),
            "day": pd.to_datetime(lines[date_col]).dt.normalize().to_numpy(),
            "amount": lines[amount_col].astype(float).to_numpy(),
        }
    )
    if product_col is not None:
        frame["product_id"] = lines[product_col].to_numpy()
    if source_col in lines.columns:
        frame.insert(0, "source_system", lines[source_col].to_numpy())
    if frame["customer_id"].isna().any():
        raise ValueError("lines contain unknown (null) customers; filter them out first")
    return frame


def churn_features(
    lines: pd.DataFrame,
    cutoff: date,
    *,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    product_col: str | None = "product_id",
    source_col: str = "source_system",
    active_within_days: int | None = None,
) -> pd.DataFrame:
    """Per-customer features from purchase lines strictly before ``cutoff``.

    Index: ``customer_id`` (or ``(source_system, customer_id)`` when lines carry a
    ``source_system`` column). Columns: :data:`FEATURE_COLUMNS` (without ``distinct_products``
    when ``product_col`` is None). Definitions: ``recency_days`` = cutoff - last purchase day;
    ``tenure_days`` = cutoff - first purchase day; ``frequency`` = distinct orders; ``monetary`` =
    revenue; ``purchase_days`` = distinct purchase days; ``avg_days_between_purchases`` =
    (last - first day) / (purchase_days - 1), NaN with a single purchase day;
    ``recency_to_gap_ratio`` = recency / that gap ("how overdue"); ``orders_last_30d`` /
    ``orders_last_90d`` / ``orders_prev_90d`` = orders in [c-30, c), [c-90, c), [c-180, c-90);
    ``trend`` = (last90 - prev90) / (last90 + prev90) in [-1, 1], 0 when both are 0.

    ``active_within_days``: keep only customers with a purchase in that many days before the
    cutoff (e.g. 365), so long-gone customers do not inflate the evaluation.
    """
    import pandas as pd

    frame = _normalise_lines(
        lines, customer_col, order_col, date_col, amount_col, product_col, source_col
    )
    keys = _keys(frame, "source_system")
    c = pd.Timestamp(cutoff).normalize()
    frame = frame[frame["day"] < c]
    if frame.empty:
        raise ValueError(f"no purchase lines before the cutoff {c.date()}")

    orders = frame.groupby([*keys, "order_id"], sort=False, observed=True).agg(
        day=("day", "min"), amount=("amount", "sum")
    )
    orders = orders.reset_index()
    age = (c - orders["day"]).dt.days.to_numpy()
    orders["last30"] = age <= 30
    orders["last90"] = age <= 90
    orders["prev90"] = (age > 90) & (age <= 180)
    orders["rev90"] = np.where(orders["last90"], orders["amount"], 0.0)
    g = orders.groupby(keys, sort=True, observed=True)
    feats = g.agg(
        first_day=("day", "min"),
        last_day=("day", "max"),
        frequency=("order_id", "size"),
        monetary=("amount", "sum"),
        orders_last_30d=("last30", "sum"),
        orders_last_90d=("last90", "sum"),
        orders_prev_90d=("prev90", "sum"),
        revenue_last_90d=("rev90", "sum"),
    )
    feats["purchase_days"] = (
        frame.groupby(keys, sort=True, observed=True)["day"].nunique().reindex(feats.index)
    )
    feats["recency_days"] = (c - feats["last_day"]).dt.days.astype(float)
    feats["tenure_days"] = (c - feats["first_day"]).dt.days.astype(float)
    feats["avg_order_value"] = feats["monetary"] / feats["frequency"]
    span = (feats["last_day"] - feats["first_day"]).dt.days.astype(float)
    repeat = feats["purchase_days"] - 1
    feats["avg_days_between_purchases"] = np.where(repeat > 0, span / repeat.clip(lower=1), np.nan)
    gap = feats["avg_days_between_purchases"]
    feats["recency_to_gap_ratio"] = np.where(gap > 0, feats["recency_days"] / gap, np.nan)
    last90 = feats["orders_last_90d"].astype(float)
    prev90 = feats["orders_prev_90d"].astype(float)
    total = last90 + prev90
    feats["trend"] = np.where(total > 0, (last90 - prev90) / total.where(total > 0, 1), 0.0)
    if product_col is not None:
        feats["distinct_products"] = (
            frame.groupby(keys, sort=True, observed=True)["product_id"]
            .nunique()
            .reindex(feats.index)
        )
    if active_within_days is not None:
        feats = feats[feats["recency_days"] <= active_within_days]
    columns = [col for col in FEATURE_COLUMNS if col in feats.columns]
    out = feats[columns].astype(float)
    return out


def build_churn_dataset(
    lines: pd.DataFrame,
    cutoff: date,
    horizon_days: int = 90,
    *,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    product_col: str | None = "product_id",
    source_col: str = "source_system",
    active_within_days: int | None = None,
    allow_partial_horizon: bool = False,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features before ``cutoff`` and the churn label over ``[cutoff, cutoff + horizon_days)``.

    ``label`` (name ``churned``, int 0/1, same index as the features) is 1 when the customer
    has no purchase line dated in that window. The window must be fully covered by the data
    (last line dated on or after ``cutoff + horizon_days - 1``), otherwise customers would be
    called churned only because the data ends; ``allow_partial_horizon=True`` disables the check.
    """
    import pandas as pd

    features = churn_features(
        lines,
        cutoff,
        customer_col=customer_col,
        order_col=order_col,
        date_col=date_col,
        amount_col=amount_col,
        product_col=product_col,
        source_col=source_col,
        active_within_days=active_within_days,
    )
    frame = _normalise_lines(lines, customer_col, order_col, date_col, amount_col, None, source_col)
    keys = _keys(frame, "source_system")
    c = pd.Timestamp(cutoff).normalize()
    end = c + pd.Timedelta(days=horizon_days)
    last_needed = end - pd.Timedelta(days=1)
    if not allow_partial_horizon and frame["day"].max() < last_needed:
        raise ValueError(
            f"label window {c.date()}..{last_needed.date()} is not covered by the data "
            f"(last line {frame['day'].max().date()}); choose an earlier cutoff"
        )
    in_window = frame[(frame["day"] >= c) & (frame["day"] < end)]
    buyers = pd.MultiIndex.from_frame(in_window[keys].drop_duplicates())
    if len(keys) == 1:
        buyers = buyers.get_level_values(0)
    label = pd.Series(
        (~features.index.isin(buyers)).astype("int64"), index=features.index, name="churned"
    )
    return features, label


def train_churn_model(
    features: pd.DataFrame,
    label: pd.Series,
    *,
    kind: Literal["gradient_boosting", "logistic"] = "gradient_boosting",
    random_state: int = 0,
    max_threads: int | None = 1,
) -> Any:
    """Fit a scikit-learn pipeline; returns it (``predict_proba`` gives churn probabilities).

    ``gradient_boosting`` (default): ``HistGradientBoostingClassifier`` — handles the NaN of
    single-purchase customers natively and non-linear effects (e.g. "overdue" only matters for
    frequent buyers). ``logistic``: median imputation, log1p of the count/amount features,
    standard scaling, ``LogisticRegression`` — a transparent alternative. ``random_state`` fixed
    so retraining on the same data gives the same model. The feature column order is remembered
    (``model.feature_names_in_``) and enforced by :func:`churn_scores`.

    ``max_threads`` caps the OpenMP/BLAS threads during fitting (``threadpoolctl``). The table
    has one row per customer, so one thread is fast (0.1 s for 3,000 customers) and does not
    fight with DuckDB's threads; measured with 2 threads on a busy 2-core machine, the same fit
    took 1-25 s because of OpenMP spin-waiting. ``None`` = library default.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if len(np.unique(label)) < 2:
        raise ValueError("label has a single class; cannot train a churn model")
    if kind == "gradient_boosting":
        model = Pipeline(
            [
                (
                    "model",
                    HistGradientBoostingClassifier(
                        learning_rate=0.05,
                        max_iter=300,
                        max_leaf_nodes=15,
                        min_samples_leaf=40,
                        l2_regularization=1.0,
                        early_stopping=True,
                        validation_fraction=0.15,
                        n_iter_no_change=20,
                        random_state=random_state,
                    ),
                )
            ]
        )
    elif kind == "logistic":
        skewed = [c for c in features.columns if c not in ("trend",)]
        model = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                (
                    "shape",
                    ColumnTransformer(
                        [
                            (
                                "log",
                                FunctionTransformer(_log1p_nonneg, feature_names_out="one-to-one"),
                                [features.columns.get_loc(c) for c in skewed],
                            )
                        ],
                        remainder="passthrough",
                    ),
                ),
                ("scale", StandardScaler()),
                (
                    "model",
                    LogisticRegression(C=1.0, max_iter=2000, random_state=random_state),
                ),
            ]
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    with _thread_limit(max_threads):
        model.fit(features, label.to_numpy())
    return model


def _thread_limit(max_threads: int | None) -> Any:
    from contextlib import nullcontext

    if max_threads is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(max_threads)


def _log1p_nonneg(x: np.ndarray) -> np.ndarray:
    """log(1 + max(x, 0)): tames the long right tail of counts and amounts (picklable)."""
    return np.log1p(np.clip(x, 0, None))


def _predict(model: Any, features: pd.DataFrame) -> np.ndarray:
    names = getattr(model, "feature_names_in_", None)
    x = features[list(names)] if names is not None else features
    with _thread_limit(1):
        return np.asarray(model.predict_proba(x)[:, 1], dtype=float)


def calibration_table(probability: np.ndarray, label: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-count bins of predicted probability: n, mean predicted, observed churn rate.

    Customers are ranked by probability (ties by position) and bin = floor(bins * (rank-1) / n),
    the same equal-size rule as the RFM quintiles; bin 1 = lowest predicted risk.
    """
    import pandas as pd

    p = np.asarray(probability, dtype=float)
    y = np.asarray(label, dtype=float)
    n = len(p)
    order = np.argsort(p, kind="mergesort")
    bin_of = np.empty(n, dtype=np.int64)
    bin_of[order] = (bins * np.arange(n)) // max(n, 1) + 1
    frame = pd.DataFrame({"bin": bin_of, "p": p, "y": y})
    table = frame.groupby("bin").agg(
        n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    return table.reset_index()


def evaluate_churn(
    model: Any,
    features: pd.DataFrame,
    label: pd.Series,
    *,
    baseline_feature: str = "recency_days",
) -> ChurnReport:
    """ROC AUC, Brier score, precision/lift in the top decile and a decile calibration table.

    ``baseline_auc`` is the AUC of ``recency_days`` used directly as the churn score (AUC only
    depends on the ranking, so any monotone model of recency alone has this AUC);
    ``auc_improvement = roc_auc - baseline_auc``. Top decile = the ``ceil(n / 10)`` customers
    with the highest predicted probability (ties by position).
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(label, dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("label has a single class; AUC is undefined")
    p = _predict(model, features)
    auc = float(roc_auc_score(y, p))
    base = float(roc_auc_score(y, features[baseline_feature].to_numpy(dtype=float)))
    k = int(np.ceil(len(y) / 10))
    top = np.argsort(-p, kind="mergesort")[:k]
    precision = float(y[top].mean())
    rate = float(y.mean())
    return ChurnReport(
        n_customers=len(y),
        churn_rate=rate,
        roc_auc=auc,
        baseline_auc=base,
        auc_improvement=auc - base,
        brier=float(brier_score_loss(y, p)),
        precision_at_top_decile=precision,
        lift_at_top_decile=precision / rate if rate > 0 else float("nan"),
        calibration=calibration_table(p, y),
    )


def churn_scores(
    model: Any,
    features: pd.DataFrame,
    thresholds: tuple[float, float] = RISK_THRESHOLDS,
) -> pd.DataFrame:
    """``churn_probability`` and ``churn_risk`` (low / medium / high) per customer.

    ``churn_risk`` = low if p < thresholds[0], medium if p < thresholds[1], else high (defaults
    0.4 and 0.7, :data:`RISK_THRESHOLDS`). Same index as ``features``.
    """
    import pandas as pd

    low, high = thresholds
    if not 0 <= low < high <= 1:
        raise ValueError("thresholds must satisfy 0 <= low < high <= 1")
    p = _predict(model, features)
    risk = np.where(p < low, "low", np.where(p < high, "medium", "high"))
    return pd.DataFrame({"churn_probability": p, "churn_risk": risk}, index=features.index)


def time_split_evaluation(
    lines: pd.DataFrame,
    train_cutoff: date,
    horizon_days: int = 90,
    *,
    kind: Literal["gradient_boosting", "logistic"] = "gradient_boosting",
    random_state: int = 0,
    max_threads: int | None = 1,
    **columns: Any,
) -> tuple[Any, ChurnReport]:
    """Train at ``train_cutoff``, evaluate at ``train_cutoff + horizon_days``.

    The training labels use lines up to the evaluation cutoff only, so the evaluation
    population's labels (the horizon after the second cutoff) are never seen in training.
    ``columns`` are passed to :func:`build_churn_dataset` (column names, ``active_within_days``).
    """
    import pandas as pd

    features, label = build_churn_dataset(lines, train_cutoff, horizon_days, **columns)
    model = train_churn_model(
        features, label, kind=kind, random_state=random_state, max_threads=max_threads
    )
    eval_cutoff = (pd.Timestamp(train_cutoff) + pd.Timedelta(days=horizon_days)).date()
    eval_features, eval_label = build_churn_dataset(lines, eval_cutoff, horizon_days, **columns)
    return model, evaluate_churn(model, eval_features, eval_label)


# --------------------------------------------------------------------------------------------
# The same features and labels as SQL (DuckDB), for the pipeline
# --------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_lines(
    source: str,
    where: str | None,
    customer_col: str,
    order_col: str,
    date_col: str,
    amount_col: str,
    source_col: str | None,
    extra_condition: str | None = None,
) -> tuple[str, str]:
    """The normalised purchase-lines CTE body and the customer key list."""
    src = f"{_q(source_col)} AS source_system, " if source_col else ""
    keys = "source_system, customer_id" if source_col else "customer_id"
    conditions = [f"({where})"] if where else []
    if extra_condition:
        conditions.append(extra_condition)
    where_sql = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    body = (
        f"SELECT {src}{_q(customer_col)} AS customer_id, {_q(order_col)} AS order_id, "
        f"CAST({_q(date_col)} AS DATE) AS day, {_q(amount_col)} AS amount "
        f"FROM {source} {where_sql}"
    )
    return body, keys


def churn_features_sql(
    source: str,
    cutoff: date,
    *,
    where: str | None = None,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    source_col: str | None = "source_system",
    active_within_days: int | None = None,
) -> str:
    """DuckDB SQL computing :func:`churn_features` (without ``distinct_products``) in the engine.

    Why: the pipeline scores every customer of a 10-million-line fact table; only the
    one-row-per-customer result should reach pandas. ``source`` is a table, view or
    parenthesised subquery of purchase lines (or of whole orders: one row per order gives the
    same features), ``where`` an optional filter on it. The statement returns the key columns
    (``source_system`` when ``source_col`` is given, ``customer_id``) then the feature columns in
    :data:`FEATURE_COLUMNS` order, as DOUBLE, sorted by key — the same values as
    :func:`churn_features` with ``product_col=None`` (a test requires it).
    """
    c = f"DATE '{cutoff.isoformat()}'"
    body, keys = _sql_lines(
        source,
        where,
        customer_col,
        order_col,
        date_col,
        amount_col,
        source_col,
        f"CAST({_q(date_col)} AS DATE) < {c}",
    )
    active = f"WHERE recency_days <= {int(active_within_days)}" if active_within_days else ""
    return f"""
WITH lines AS ({body}),
orders AS (
    SELECT {keys}, order_id, min(day) AS day, sum(amount) AS amount,
           date_diff('day', min(day), {c}) AS age
    FROM lines GROUP BY {keys}, order_id
),
per_customer AS (
    SELECT {keys},
           min(day) AS first_day, max(day) AS last_day,
           count(*) AS frequency,
           CAST(sum(amount) AS DOUBLE) AS monetary,
           count(*) FILTER (WHERE age <= 30) AS orders_last_30d,
           count(*) FILTER (WHERE age <= 90) AS orders_last_90d,
           count(*) FILTER (WHERE age > 90 AND age <= 180) AS orders_prev_90d,
           CAST(coalesce(sum(amount) FILTER (WHERE age <= 90), 0) AS DOUBLE) AS revenue_last_90d
    FROM orders GROUP BY {keys}
),
purchase_days AS (
    SELECT {keys}, count(DISTINCT day) AS purchase_days FROM lines GROUP BY {keys}
),
features AS (
    SELECT p.*, d.purchase_days,
           CAST(date_diff('day', p.last_day, {c}) AS DOUBLE) AS recency_days,
           CAST(date_diff('day', p.first_day, {c}) AS DOUBLE) AS tenure_days,
           CASE WHEN d.purchase_days > 1
                THEN CAST(date_diff('day', p.first_day, p.last_day) AS DOUBLE)
                     / (d.purchase_days - 1)
           END AS avg_days_between_purchases
    FROM per_customer AS p JOIN purchase_days AS d USING ({keys})
)
SELECT {keys},
       recency_days,
       CAST(frequency AS DOUBLE) AS frequency,
       monetary,
       tenure_days,
       monetary / frequency AS avg_order_value,
       CAST(purchase_days AS DOUBLE) AS purchase_days,
       CAST(avg_days_between_purchases AS DOUBLE) AS avg_days_between_purchases,
       CAST(CASE WHEN avg_days_between_purchases > 0
                 THEN recency_days / avg_days_between_purchases END AS DOUBLE)
           AS recency_to_gap_ratio,
       CAST(orders_last_30d AS DOUBLE) AS orders_last_30d,
       CAST(orders_last_90d AS DOUBLE) AS orders_last_90d,
       CAST(orders_prev_90d AS DOUBLE) AS orders_prev_90d,
       revenue_last_90d,
       CAST(CASE WHEN orders_last_90d + orders_prev_90d > 0
                 THEN (orders_last_90d - orders_prev_90d)
                      / (orders_last_90d + orders_prev_90d)
                 ELSE 0 END AS DOUBLE) AS trend
FROM features
{active}
ORDER BY {keys}
""".strip()


def churn_labels_sql(
    source: str,
    cutoff: date,
    horizon_days: int = 90,
    *,
    where: str | None = None,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    date_col: str = "order_date",
    amount_col: str = "net_amount",
    source_col: str | None = "source_system",
) -> str:
    """DuckDB SQL for the label of :func:`build_churn_dataset`: key columns and ``churned``.

    One row per customer with a purchase line before ``cutoff``; ``churned`` = 1 when they have
    no purchase line dated in ``[cutoff, cutoff + horizon_days)``. Unlike
    :func:`build_churn_dataset` this does not check that the data covers the window: the caller
    must (compare the last date of the data with ``cutoff + horizon_days - 1``).
    """
    c = f"DATE '{cutoff.isoformat()}'"
    end = f"(DATE '{cutoff.isoformat()}' + INTERVAL {int(horizon_days)} DAY)"
    body, keys = _sql_lines(
        source, where, customer_col, order_col, date_col, amount_col, source_col
    )
    return f"""
WITH lines AS ({body})
SELECT {keys},
       CAST(CASE WHEN count(*) FILTER (WHERE day >= {c} AND day < {end}) > 0
                 THEN 0 ELSE 1 END AS BIGINT) AS churned
FROM lines
WHERE day < {end}
GROUP BY {keys}
HAVING count(*) FILTER (WHERE day < {c}) > 0
ORDER BY {keys}
""".strip()
