"""retailhub analytics layer: pure functions, frames in and frames out (no I/O, no database).

Modules (import them directly; nothing heavy is imported here, so ``import retailhub.analytics``
stays fast — scipy, scikit-learn and statsmodels load inside the functions that need them):

* :mod:`~retailhub.analytics.rfm` — RFM scores and segments (pandas and DuckDB SQL).
* :mod:`~retailhub.analytics.clv` — BG/NBD + Gamma-Gamma customer lifetime value.
* :mod:`~retailhub.analytics.churn` — churn features, labels, model and evaluation.
* :mod:`~retailhub.analytics.forecast` — ETS revenue forecasts and rolling backtests.
* :mod:`~retailhub.analytics.anomalies` — KPI anomalies, attribution, line outliers.
* :mod:`~retailhub.analytics.insights` — ranked plain-language insights.
* :mod:`~retailhub.analytics.products` — ABC classes and growth.
* :mod:`~retailhub.analytics.model_checks` — insights about the models (churn vs recency,
  forecast vs seasonal naive).

The ``*_sql`` functions (``rfm_sql``, ``churn_features_sql``, ``churn_labels_sql``,
``summary_sql``, ``transaction_outliers_sql``) return DuckDB SQL computing the same result as
their pandas twins, so the pipeline can run them where the data is.

Definitions and measured validation numbers: ``docs/analytics.md``.
"""
