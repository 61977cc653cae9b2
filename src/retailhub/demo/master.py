"""The shared master data: one customer master and the products of both sales systems.

Every dataset draws its keys from here, which is what makes them consistent: Online Retail
``CustomerID`` and behaviour ``customer_id`` are the master id, Superstore ``Customer ID`` is
two initials + ``-`` + the master id, and the product catalog lists exactly these products.
Popularity weights are Pareto-distributed so a few customers and products carry most revenue.
Master tables are small (O(rows / 100)), so building them with Python lists is fine.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from retailhub.demo import vocab
from retailhub.demo import writer as w
from retailhub.demo.rand import Stream, generator, pareto_weights

FIRST_CUSTOMER_ID = 12346
#: Countries used by clean Online Retail data; anything else is a ``bad_code`` defect.
COUNTRIES: tuple[str, ...] = tuple(c for c, _ in vocab.COUNTRY_SHARES)
#: Any valid Online Retail StockCode (products and the non-product codes).
STOCK_CODE_PATTERN = r"^(\d{5}[A-Za-z]*|POST|DOT|M|D|C2|S|BANK CHARGES|AMAZONFEE|CRUK|PADS|B)$"
#: StockCodes that denote products; referential checks against the catalog apply only to these.
PRODUCT_CODE_PATTERN = r"^\d{5}[A-Za-z]*$"
#: 5-digit StockCode numbers of real products stay below this; orphans are drawn above it.
PRODUCT_CODE_CEILING = 95000

CUSTOMER_ALPHA = 1.16  # Pareto 80/20
PRODUCT_ALPHA = 1.3
SS_PRODUCT_ALPHA = 1.3

#: Non-product Online Retail codes as (StockCode, Description, UnitPrice in pence). Several
#: rows per code give the handful of amounts seen in the real data (postage by destination).
NON_PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("POST", "POSTAGE", 1800),
    ("POST", "POSTAGE", 2800),
    ("POST", "POSTAGE", 4000),
    ("DOT", "DOTCOM POSTAGE", 5275),
    ("DOT", "DOTCOM POSTAGE", 11390),
    ("DOT", "DOTCOM POSTAGE", 16714),
    ("M", "Manual", 85),
    ("M", "Manual", 255),
    ("M", "Manual", 1000),
    ("M", "Manual", 3500),
    ("BANK CHARGES", "Bank Charges", 1500),
    ("D", "Discount", 576),
    ("D", "Discount", 1500),
    ("D", "Discount", 2750),
)


def non_product_rows(code: str) -> np.ndarray:
    """Indices into :data:`NON_PRODUCTS` of one code."""
    return np.array([i for i, (c, _, _) in enumerate(NON_PRODUCTS) if c == code])


def ascii_fold(text: str) -> str:
    """``Zoë Müller`` -> ``Zoe Muller``: e-mail local parts stay ASCII."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


FIRST_NAMES: tuple[str, ...] = vocab.FIRST_NAMES_F + vocab.FIRST_NAMES_M
_NAME_PARTS = FIRST_NAMES + vocab.LAST_NAMES
# Names are joined without CSV escaping, so no part may need quoting.
assert not any(ch in part for part in _NAME_PARTS for ch in ',"\r\n')


def _email_part(name: str) -> str:
    return re.sub(r"[^a-z]", "", ascii_fold(name).lower())


@dataclass(frozen=True)
class Customers:
    """The customer master; index ``i`` everywhere means ``ids[i]``.

    Text columns are built as Arrow arrays from small name tables (first and last name are
    indices), because the master has ``rows / 100`` customers - 100k at 10M rows.
    """

    ids: np.ndarray
    first: np.ndarray  # index into FIRST_NAMES
    last: np.ndarray  # index into vocab.LAST_NAMES
    gender: np.ndarray  # index into vocab.GENDERS
    country: np.ndarray  # index into COUNTRIES
    weight: np.ndarray  # Pareto purchase propensity
    segment: np.ndarray  # index into vocab.SEGMENTS
    age: np.ndarray
    tier: np.ndarray  # index into vocab.LOYALTY_TIERS
    signup: np.ndarray  # YYYY-MM-DD strings, before the period starts
    us_city: np.ndarray  # index into vocab.US_CITIES (Superstore ship-to)

    def __len__(self) -> int:
        return len(self.ids)

    def names(self) -> w.StrArray:
        """``First Last``; never needs CSV quoting."""
        return w.join(
            [
                w.take(w.strings(FIRST_NAMES), self.first),
                w.take(w.strings(vocab.LAST_NAMES), self.last),
            ],
            " ",
        )

    def emails(self) -> w.StrArray:
        """``first.last12346@example.com`` (ASCII-folded, reserved example domain)."""
        first = w.strings([_email_part(n) for n in FIRST_NAMES])
        last = w.strings([_email_part(n) for n in vocab.LAST_NAMES])
        return w.join(
            [
                w.take(first, self.first),
                ".",
                w.take(last, self.last),
                w.ints(self.ids),
                "@example.com",
            ],
            "",
        )

    def superstore_ids(self) -> w.StrArray:
        """Tableau style ``CG-12346``: initials + '-' + the master id (conformable by number)."""
        first = w.strings([ascii_fold(n)[0].upper() for n in FIRST_NAMES])
        last = w.strings([ascii_fold(n)[0].upper() for n in vocab.LAST_NAMES])
        return w.join(
            [w.take(first, self.first), w.take(last, self.last), "-", w.ints(self.ids)], ""
        )


@dataclass(frozen=True)
class Products:
    """Products of one sales system plus their catalog attributes; prices in cents."""

    codes: list[str]
    names: list[str]
    category: list[str]
    sub_category: list[str]
    brand: list[str]
    price_cents: np.ndarray
    cost_cents: np.ndarray
    weight: np.ndarray  # Pareto popularity
    pack: np.ndarray  # typical pack size (Online Retail quantities are multiples of it)
    weight_g: np.ndarray
    dims_cm: np.ndarray  # shape (n, 3): length >= width >= height

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class Master:
    customers: Customers
    products: Products  # Online Retail
    ss_products: Products  # Superstore


def n_customers_for(rows: int) -> int:
    return max(50, rows // 100)


def n_products_for(rows: int) -> int:
    """Catalog size grows like sqrt(rows) (UCI: ~4,000 codes for 0.5M lines), capped."""
    return int(np.clip(int(4 * math.sqrt(rows)), 60, 4000))


def n_ss_products_for(rows: int) -> int:
    return int(np.clip(rows // 500, 100, 1900))


def build_master(seed: int, rows: int) -> Master:
    return Master(
        customers=_customers(seed, n_customers_for(rows)),
        products=_online_products(seed, n_products_for(rows)),
        ss_products=_superstore_products(seed, n_ss_products_for(rows)),
    )


def _shares(pairs: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(pairs, dtype=np.float64)
    return p / p.sum()


def _customers(seed: int, n: int) -> Customers:
    rng = generator(seed, Stream.CUSTOMERS)
    gender = rng.integers(0, 2, n)
    n_f = len(vocab.FIRST_NAMES_F)
    fem = rng.integers(0, n_f, n)
    mal = n_f + rng.integers(0, len(vocab.FIRST_NAMES_M), n)
    first = np.where(gender == 0, fem, mal)
    last = rng.integers(0, len(vocab.LAST_NAMES), n)
    country_p = _shares(tuple(s for _, s in vocab.COUNTRY_SHARES))
    country = rng.choice(len(COUNTRIES), n, p=country_p)
    weight = pareto_weights(rng, n, CUSTOMER_ALPHA)
    segment = rng.choice(len(vocab.SEGMENTS), n, p=_shares(vocab.SEGMENT_SHARES))
    age = np.clip(np.rint(rng.normal(42, 13, n)), 18, 85).astype(np.int64)
    rank = np.argsort(np.argsort(-weight)) / n  # 0 = best customer
    tier = np.select([rank < 0.05, rank < 0.2, rank < 0.5], [3, 2, 1], 0)
    base = np.datetime64("2018-01-01")
    signup_days = rng.integers(0, (np.datetime64("2023-12-31") - base).astype(int) + 1, n)
    signup = np.datetime_as_string(base + signup_days.astype("timedelta64[D]"))
    assert len(vocab.US_CITY_SHARES) == len(vocab.US_CITIES)
    us_city = rng.choice(len(vocab.US_CITIES), n, p=_shares(vocab.US_CITY_SHARES))
    return Customers(
        ids=FIRST_CUSTOMER_ID + np.arange(n, dtype=np.int64),
        first=first,
        last=last,
        gender=gender,
        country=country,
        weight=weight,
        segment=segment,
        age=age,
        tier=tier,
        signup=signup,
        us_city=us_city,
    )


def _dimensions(rng: np.random.Generator, weight_g: np.ndarray) -> np.ndarray:
    """Plausible box dimensions from weight (density ~0.3 g/cm3), sorted descending."""
    volume = weight_g / 0.3
    shape = rng.uniform(0.4, 1.0, (len(weight_g), 3))
    scale = (volume / shape.prod(axis=1)) ** (1 / 3)
    dims = np.sort(shape * scale[:, None], axis=1)[:, ::-1]
    return np.maximum(np.round(dims, 1), 0.5)


def _costs(rng: np.random.Generator, price: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Unit cost strictly between 0 and the list price, in whole cents."""
    cost = np.rint(price * rng.uniform(lo, hi, len(price))).astype(np.int64)
    return np.clip(cost, 1, price - 1)


def _online_products(seed: int, n: int) -> Products:
    rng = generator(seed, Stream.PRODUCTS)
    numbers = 10000 + rng.choice(PRODUCT_CODE_CEILING - 10000, n, replace=False)
    letters = np.array(list("ABCDEFGLMNPSW"))
    suffix = np.where(rng.random(n) < 0.15, letters[rng.integers(0, len(letters), n)], "")
    codes = [f"{c}{s}" for c, s in zip(numbers.tolist(), suffix.tolist(), strict=True)]

    nouns = list(vocab.OR_NOUNS)
    na, nc = len(vocab.OR_ADJECTIVES), len(vocab.OR_COLOURS)
    combo = rng.choice(na * nc * len(nouns), n, replace=False)
    add_suffix = rng.random(n) < 0.06
    sfx = rng.integers(0, len(vocab.OR_NAME_SUFFIXES), n)
    names, cat, sub = [], [], []
    for k, c in enumerate(combo.tolist()):
        noun = nouns[c // (na * nc)]
        name = f"{vocab.OR_ADJECTIVES[c % na]} {vocab.OR_COLOURS[(c // na) % nc]} {noun}"
        if add_suffix[k]:
            name += vocab.OR_NAME_SUFFIXES[sfx[k]]
        names.append(name)
        cat.append(vocab.OR_NOUNS[noun][0])
        sub.append(vocab.OR_NOUNS[noun][1])
    brand = [vocab.OR_BRANDS[i] for i in rng.integers(0, len(vocab.OR_BRANDS), n).tolist()]

    price = np.clip(np.rint(rng.lognormal(math.log(250), 0.85, n) / 5) * 5, 19, 9500)
    price = price.astype(np.int64)
    pack_choices = {
        0: (12, 24, 48),
        1: (6, 12, 24),
        2: (1, 2, 4, 6, 12),
        3: (1, 2, 3, 4),
        4: (1, 2),
    }
    tier = np.digitize(price, [50, 150, 400, 1000])
    pick = rng.random(n)
    pack = np.array(
        [pack_choices[t][int(u * len(pack_choices[t]))] for t, u in zip(tier, pick, strict=True)]
    )
    weight_g = np.maximum(np.rint(rng.lognormal(math.log(180), 0.8, n)), 5).astype(np.int64)
    return Products(
        codes=codes,
        names=names,
        category=cat,
        sub_category=sub,
        brand=brand,
        price_cents=price,
        cost_cents=_costs(rng, price, 0.35, 0.65),
        weight=pareto_weights(rng, n, PRODUCT_ALPHA),
        pack=pack,
        weight_g=weight_g,
        dims_cm=_dimensions(rng, weight_g),
    )


def _superstore_products(seed: int, n: int) -> Products:
    rng = generator(seed, Stream.SS_PRODUCTS)
    subs = list(vocab.SS_SUBCATEGORIES)
    sub_idx = rng.choice(len(subs), n, p=_shares(vocab.SS_SUBCATEGORY_SHARES))
    numbers = 10000000 + rng.choice(5000, n, replace=False)
    codes, names, cat, sub, brand, price = [], [], [], [], [], []
    seen: set[str] = set()
    for k in range(n):
        s = subs[sub_idx[k]]
        category, code2, lo, hi = vocab.SS_SUBCATEGORIES[s]
        codes.append(f"{vocab.SS_CATEGORY_CODES[category]}-{code2}-{numbers[k]}")
        while True:  # product names are unique; the combination space is large
            b = vocab.SS_BRANDS[rng.integers(len(vocab.SS_BRANDS))]
            name = (
                f"{b} {vocab.SS_SERIES[rng.integers(len(vocab.SS_SERIES))]} "
                f"{vocab.SS_NOUNS[s][rng.integers(len(vocab.SS_NOUNS[s]))]}"
                f"{vocab.SS_SUFFIXES[rng.integers(len(vocab.SS_SUFFIXES))]}"
            )
            if name not in seen:
                seen.add(name)
                break
        names.append(name)
        cat.append(category)
        sub.append(s)
        brand.append(b)
        price.append(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    price_cents = np.maximum(np.rint(np.array(price) * 100), 100).astype(np.int64)
    base_g = {"Furniture": 12000.0, "Office Supplies": 400.0, "Technology": 1500.0}
    weight_g = np.maximum(
        np.rint(np.array([base_g[c] for c in cat]) * rng.lognormal(0, 0.6, n)), 5
    ).astype(np.int64)
    return Products(
        codes=codes,
        names=names,
        category=cat,
        sub_category=sub,
        brand=brand,
        price_cents=price_cents,
        cost_cents=_costs(rng, price_cents, 0.55, 0.85),
        weight=pareto_weights(rng, n, SS_PRODUCT_ALPHA),
        pack=np.ones(n, dtype=np.int64),
        weight_g=weight_g,
        dims_cm=_dimensions(rng, weight_g),
    )
