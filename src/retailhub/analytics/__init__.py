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

Definitions and measured validation numbers: ``docs/analytics.md``.
"""
