"""Keep credentials out of every URI, log line and error message the sources layer produces.

Errors travel far (CLI output, the run ledger, Airflow logs), so anything that could hold a secret
goes through these helpers before it is put into a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that usually carry a credential: any name containing one of these
# (case-insensitive), so client_secret, x-api-key and auth_token are masked too. Masking a
# harmless "sort_key" is the cheaper mistake.
_SECRET_FRAGMENTS = ("token", "secret", "key", "pass", "auth", "sig", "credential")


def is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(fragment in lowered for fragment in _SECRET_FRAGMENTS)


def redact_url(url: str, secret_params: Iterable[str] = ()) -> str:
    """Return ``url`` without a password in the authority and with secret query values masked
    (by name, and the parameters named in ``secret_params`` whatever their name)."""
    named = {p.lower() for p in secret_params}
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}:{MASK}@{host}{port}"
    query = parts.query
    if query:
        pairs = [
            (k, MASK if is_secret_param(k) or k.lower() in named else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret in ``text`` with ``***``, also
    as it appears percent-encoded in a URL (a token with ``+``, ``/`` or ``=`` in it)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            escaped = repr(secret)[1:-1]  # as an error quoting bytes or a repr shows it
            forms = (secret, quote(secret, safe=""), quote_plus(secret), escaped)
            for form in dict.fromkeys(forms):
                text = text.replace(form, MASK)
    return text
