"""Which defects are injected, how many, and the ``defects.json`` ground truth.

Count formula (per ``(dataset, kind, column)``; ``R`` = ``defect_rate``)::

    count = 0                                                   if R == 0
    count = max(1, round(R * dataset_rows / kinds_of_dataset))  otherwise (Python round)

``dataset_rows`` is the clean size of the dataset: ``rows`` for online_retail (before the
duplicate copies are added), the number of products for product_catalog and the number of
main-file rows (``rows // 5``) for customer_behaviour. ``kinds_of_dataset`` is the number of
``(kind, column)`` pairs listed below for that dataset (9, 1 and 2). Superstore gets no
defects. With ``R > 0`` customer_behaviour also gets one ``stale_file`` (count 1, not part of
the formula).

Every defective row carries exactly one defect, and the rows are disjoint across kinds: each
dataset draws all its defective rows (and the clean originals of duplicated rows) in a single
sample without replacement, then splits it between kinds. Referential checks apply only to
StockCodes matching ``^\\d{5}[A-Za-z]*$`` (non-product codes such as POST have no catalog row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retailhub.demo import timeline
from retailhub.demo.master import (
    COUNTRIES,
    PRODUCT_CODE_CEILING,
    PRODUCT_CODE_PATTERN,
    STOCK_CODE_PATTERN,
)

ONLINE_RETAIL = "online_retail"
SUPERSTORE = "superstore"
PRODUCT_CATALOG = "product_catalog"
CUSTOMER_BEHAVIOUR = "customer_behaviour"

Key = tuple[str, str | None]

ONLINE_RETAIL_KINDS: tuple[Key, ...] = (
    ("missing_value", "customer_id"),
    ("missing_value", "description"),
    ("duplicate_row", None),
    ("negative_price", "unit_price"),
    ("impossible_date", "invoice_at"),
    ("bad_code", "stock_code"),
    ("bad_code", "country"),
    ("non_numeric", "quantity"),
    ("orphan_key", "stock_code"),
)
CATALOG_KINDS: tuple[Key, ...] = (("missing_value", "list_price"),)
BEHAVIOUR_KINDS: tuple[Key, ...] = (
    ("missing_value", "email"),
    ("orphan_key", "customer_id"),
)
STALE_AGE_DAYS = 30

# Replacement values. None of them is read as missing by pandas/DuckDB (no "NA", "#N/A"...),
# none matches STOCK_CODE_PATTERN / a number / a real date, so each trips exactly one check.
BAD_STOCK_CODES = ("??-1X", "85A12", "8512", "ITEM-", "?", "1234567", "22X-7", "0000 1")
BAD_COUNTRIES = ("Atlantis", "Narnia", "Wakanda", "Middle-earth", "Utopia", "Ruritania")
NON_NUMERIC_QUANTITIES = ("abc", "1O", "12pcs", "six", "x3", "2 4", "l0")
#: Month-day parts of impossible dates; the year and the time of the real line are kept.
IMPOSSIBLE_MONTH_DAYS = (
    "-02-30 ",
    "-02-31 ",
    "-04-31 ",
    "-06-31 ",
    "-09-31 ",
    "-11-31 ",
    "-13-01 ",
    "-13-15 ",
    "-00-12 ",
    "-12-32 ",
)
#: Orphan StockCodes are 5-digit numbers in [ORPHAN_CODE_LOW, 100000): never in the catalog.
ORPHAN_CODE_LOW = PRODUCT_CODE_CEILING


def defect_count(rate: float, dataset_rows: int, n_kinds: int) -> int:
    """Rows per ``(dataset, kind, column)``; see the module docstring."""
    if rate <= 0:
        return 0
    return max(1, round(rate * dataset_rows / n_kinds))


def sample_disjoint(
    rng: np.random.Generator, population: int, groups: int, k: int, what: str
) -> list[np.ndarray]:
    """``groups`` disjoint sorted samples of ``k`` row indices out of ``range(population)``."""
    need = groups * k
    if need == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(groups)]
    if need > population:
        raise ValueError(
            f"defect_rate too high: {what} needs {need} distinct defective rows "
            f"but has only {population}"
        )
    picked = rng.choice(population, need, replace=False).astype(np.int64)
    return [np.sort(picked[i * k : (i + 1) * k]) for i in range(groups)]


@dataclass
class _Entry:
    dataset: str
    kind: str
    column: str | None
    expected: int
    files: list[str] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    duplicate_of: list[np.ndarray] = field(default_factory=list)


class DefectLog:
    """Collects where each injected defect ended up (file, 1-based data line)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str | None], _Entry] = {}
        self._stale: list[dict[str, Any]] = []

    def expect(self, dataset: str, kinds: tuple[Key, ...], count: int) -> None:
        """Register the kinds of a dataset; entries keep this order in ``defects.json``."""
        if count == 0:
            return
        for kind, column in kinds:
            self._entries[(dataset, kind, column)] = _Entry(dataset, kind, column, count)

    def add(
        self,
        dataset: str,
        key: Key,
        file: str,
        lines: np.ndarray,
        duplicate_of: np.ndarray | None = None,
    ) -> None:
        if len(lines) == 0:
            return
        entry = self._entries[(dataset, *key)]
        entry.files.append(file)
        entry.lines.append(np.asarray(lines, dtype=np.int64))
        if duplicate_of is not None:
            entry.duplicate_of.append(np.asarray(duplicate_of, dtype=np.int64))

    def add_stale(self, file: str, age_days: int) -> None:
        self._stale.append(
            {
                "dataset": CUSTOMER_BEHAVIOUR,
                "kind": "stale_file",
                "column": None,
                "file": file,
                "count": 1,
                "age_days": age_days,
            }
        )

    def summary(self) -> list[dict[str, Any]]:
        """Entries without their rows; checks every planned count was really injected."""
        out: list[dict[str, Any]] = []
        for e in self._entries.values():
            count = int(sum(len(x) for x in e.lines))
            if count != e.expected:
                raise AssertionError(
                    f"{e.dataset}/{e.kind}/{e.column}: injected {count}, planned {e.expected}"
                )
            out.append({"dataset": e.dataset, "kind": e.kind, "column": e.column, "count": count})
        return out + [dict(x) for x in self._stale]

    def entries_json(self) -> list[str]:
        """Each entry of the ``defects`` list as JSON text, one row per line.

        Hand-assembled because ``json.dumps`` of ~100k row objects (10M rows at 1 %) takes
        seconds; the result is ordinary JSON.
        """
        out = []
        for e, meta in zip(self._entries.values(), self.summary(), strict=False):
            rows: list[str] = []
            for i, (file, lines) in enumerate(zip(e.files, e.lines, strict=True)):
                f = json.dumps(file, ensure_ascii=False)
                if e.duplicate_of:
                    rows.extend(
                        f'{{"file": {f}, "line": {a}, "duplicate_of": {b}}}'
                        for a, b in zip(lines.tolist(), e.duplicate_of[i].tolist(), strict=True)
                    )
                else:
                    rows.extend(f'{{"file": {f}, "line": {a}}}' for a in lines.tolist())
            body = json.dumps(meta, ensure_ascii=False)[:-1]
            out.append(body + ', "rows": [\n   ' + ",\n   ".join(rows) + "\n  ]}")
        out += [json.dumps(x, ensure_ascii=False) for x in self._stale]
        return out


def reference() -> dict[str, Any]:
    """What the quality gate needs to re-detect the defects (lists and patterns)."""
    return {
        "countries": list(COUNTRIES),
        "stock_code_pattern": STOCK_CODE_PATTERN,
        "product_code_pattern": PRODUCT_CODE_PATTERN,
        "referential_checks_apply_to": PRODUCT_CODE_PATTERN,
        "count_formula": "max(1, round(defect_rate * dataset_rows / kinds_of_dataset))",
    }


def write_defects_json(
    path: Path,
    *,
    seed: int,
    rows: int,
    defect_rate: float,
    datasets: dict[str, Any],
    log: DefectLog,
    extra: dict[str, Any],
) -> None:
    """Write the ground truth; deterministic (relative paths, no timestamps)."""
    doc = {
        "seed": seed,
        "rows": rows,
        "defect_rate": defect_rate,
        "generated_at_fixed": timeline.GENERATED_AT_FIXED,
        "datasets": datasets,
        "reference": {**reference(), **extra},
    }
    head = json.dumps(doc, indent=1, ensure_ascii=False)[:-2]  # drop the closing "\n}"
    entries = log.entries_json()
    body = ",\n  ".join(entries)
    defects = ' "defects": [\n  ' + body + "\n ]" if entries else ' "defects": []'
    path.write_text(head + ",\n" + defects + "\n}\n", encoding="utf-8")
