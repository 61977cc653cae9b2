"""The fixed two-year calendar of the demo data and its seasonality.

The period is fixed (2024-01-01 .. 2025-12-31) rather than relative to "today" so that the same
seed always yields the same bytes. Day weights combine weekly seasonality, a Nov/Dec peak and
an upward trend; they drive how many orders or activity rows land on each day.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Literal

import numpy as np

START = dt.date(2024, 1, 1)
END = dt.date(2025, 12, 31)
N_DAYS = (END - START).days + 1
GENERATED_AT_FIXED = END.isoformat()

#: Relative demand per calendar month (Jan..Dec): gift retail peaks before Christmas.
MONTH_FACTOR = np.array([0.75, 0.75, 0.9, 0.85, 0.95, 0.9, 0.9, 0.9, 1.15, 1.25, 1.6, 1.45])
#: Relative demand per weekday (Mon..Sun) per channel. The UCI shop never trades on Saturday.
WEEKDAY_FACTOR: dict[str, np.ndarray] = {
    "online": np.array([1.0, 1.05, 1.05, 1.15, 0.85, 0.0, 0.55]),
    "superstore": np.array([1.0, 1.0, 1.0, 1.05, 1.0, 0.85, 0.8]),
    "behaviour": np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.9, 1.05]),
}
#: Growth from the first to the last day of the period.
TREND = 0.35

Kind = Literal["online", "superstore", "behaviour"]


@cache
def dates() -> tuple[dt.date, ...]:
    """Every calendar day of the period."""
    return tuple(START + dt.timedelta(days=i) for i in range(N_DAYS))


@cache
def _day_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ds = dates()
    year = np.array([d.year for d in ds], dtype=np.int64)
    month = np.array([d.month for d in ds], dtype=np.int64)
    weekday = np.array([d.weekday() for d in ds], dtype=np.int64)
    closed = np.array([(d.month, d.day) in {(12, 25), (12, 26), (1, 1)} for d in ds])
    return year, month, weekday, closed


def day_weights(kind: Kind) -> np.ndarray:
    """Non-negative demand weight of every day (sums to 1)."""
    _, month, weekday, closed = _day_parts()
    trend = 1.0 + TREND * np.arange(N_DAYS) / (N_DAYS - 1)
    w = MONTH_FACTOR[month - 1] * WEEKDAY_FACTOR[kind][weekday] * trend
    if kind == "online":
        w = np.where(closed, 0.0, w)
    return w / w.sum()


def month_index() -> np.ndarray:
    """Month number 0..23 of every day; also the index of the monthly output file."""
    year, month, _, _ = _day_parts()
    return (year - START.year) * 12 + (month - 1)


def year_of_day() -> np.ndarray:
    """Calendar year of every day."""
    return _day_parts()[0]


N_MONTHS = (END.year - START.year) * 12 + END.month - START.month + 1


def month_labels() -> list[str]:
    """``YYYY-MM`` of every month of the period, used as file names."""
    return [f"{START.year + m // 12}-{m % 12 + 1:02d}" for m in range(N_MONTHS)]


def iso_dates(extra_days: int = 0) -> list[str]:
    """``YYYY-MM-DD`` of every day, plus ``extra_days`` after the period end."""
    return [(START + dt.timedelta(days=i)).isoformat() for i in range(N_DAYS + extra_days)]


def us_dates(extra_days: int = 0) -> list[str]:
    """Tableau's ``M/D/YYYY`` (no zero padding) of every day, plus days after the end."""
    out = []
    for i in range(N_DAYS + extra_days):
        d = START + dt.timedelta(days=i)
        out.append(f"{d.month}/{d.day}/{d.year}")
    return out


def clock_times() -> list[str]:
    """``HH:MM:00`` for every minute of a day (the UCI data has seconds always ``00``)."""
    return [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]
