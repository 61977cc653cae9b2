"""Currency symbols for the sentences of the marts (amounts stay in the source currency)."""

from __future__ import annotations

SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "INR": "₹"}


def symbol(currency_code: str | None) -> str:
    """'£' for GBP, '$' for USD, ...; an unknown code is written as 'SAR ' (code and space)."""
    if not currency_code:
        return ""
    return SYMBOLS.get(currency_code.upper(), f"{currency_code.upper()} ")
