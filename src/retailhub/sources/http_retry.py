"""One HTTP request with the retry policy every API source shares.

Retry what can heal (429, 5xx, timeouts, refused connections) with exponential backoff and
jitter, honouring ``Retry-After``; fail at once on other 4xx, because asking again with the same
token and parameters cannot help. The token never reaches a message: every text is scrubbed.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from retailhub.errors import SourceError, SourceRetriesExhausted
from retailhub.sources.redact import redact_url, scrub

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_DELAY_S = 60.0  # never sleep longer than this between attempts, whatever Retry-After says
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    backoff_s: float
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (0-based): base * 2**attempt, jittered to [50%, 100%]."""
        full = self.backoff_s * (2**attempt)
        return min(MAX_DELAY_S, full * (0.5 + random.random() / 2))


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    params: dict[str, Any],
    policy: RetryPolicy,
    source: str,
    secrets: tuple[str | None, ...],
    what: str,
    secret_params: tuple[str, ...] = (),
) -> Any:
    """Send one request (retrying transient failures) and return the decoded JSON body.

    ``secrets`` are masked wherever they appear in a message; ``secret_params`` are query
    parameters whose values are masked in the URL shown, whatever their name."""
    import httpx

    # Merge (not replace) the query: httpx drops a URL's own query string when params are given.
    target = httpx.URL(url).copy_merge_params(params) if method == "GET" else httpx.URL(url)
    shown = scrub(redact_url(str(target), secret_params), secrets)
    last_problem = "no attempt made"
    for attempt in range(policy.max_retries + 1):
        delay: float | None = None
        try:
            if method == "GET":
                response = client.request(method, target)
            else:
                response = client.request(method, target, json=params)
        except httpx.TimeoutException:
            last_problem = f"timed out after {client.timeout.read}s"
        except httpx.TransportError as exc:
            last_problem = f"connection failed ({type(exc).__name__}: {scrub(str(exc), secrets)})"
        else:
            status = response.status_code
            if status in _RETRY_STATUS:
                last_problem = f"HTTP {status} {response.reason_phrase}"
                delay = retry_after_s(response)
            elif status >= 400:
                body = scrub(response.text[:300], secrets).strip()
                hint = " (check the token)" if status in (401, 403) else ""
                raise SourceError(
                    f"source {source!r}: {what} {shown} failed with HTTP {status} "
                    f"{response.reason_phrase}{hint}" + (f": {body}" if body else ""),
                    source=source,
                    url=shown,
                    status=status,
                )
            else:
                try:
                    # Decimal keeps every digit a price or id has, as JSON files do (ijson).
                    return response.json(parse_float=Decimal)
                except ValueError as exc:
                    raise SourceError(
                        f"source {source!r}: {what} {shown} did not return JSON "
                        f"(content-type {response.headers.get('content-type', '?')})",
                        source=source,
                        url=shown,
                    ) from exc
        if attempt < policy.max_retries:
            wait = min(MAX_DELAY_S, delay) if delay is not None else policy.backoff(attempt)
            log.warning(
                "source %s: %s %s: %s; retry %d/%d in %.2fs",
                source,
                what,
                shown,
                last_problem,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            policy.sleep(wait)
    raise SourceRetriesExhausted(
        f"source {source!r}: {what} {shown} unavailable after {policy.max_retries + 1} attempts: "
        f"{last_problem}",
        source=source,
        url=shown,
    )
