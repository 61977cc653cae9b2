"""A JSON HTTP API, read page by page (page number, offset or cursor paging).

One extraction is one input unit. The first page is fetched inside ``open`` so that a wrong URL,
a rejected token or an unreachable server fails before anything lands; later pages are fetched
while the landing step drains the reader, one page in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from retailhub.config.sources import HttpSourceConfig
from retailhub.errors import ConfigError, SourceError
from retailhub.sources.base import InputUnit, SourceState, StoredWindow
from retailhub.sources.http_retry import RetryPolicy, request_json
from retailhub.sources.records import TextBatcher, dig
from retailhub.sources.redact import redact_url
from retailhub.sources.watermark import TextValues, WatermarkWindow

log = logging.getLogger(__name__)


class HttpSource:
    """Streams the records found at ``records_path`` of every page of ``url``."""

    def __init__(self, config: HttpSourceConfig, policy: RetryPolicy | None = None) -> None:
        self.config = config
        self.policy = policy or RetryPolicy(config.max_retries, config.backoff_s)
        self._window: WatermarkWindow | None = None
        self._digest: Any = None  # hashlib sha256 of the records read by the last open()

    @property
    def name(self) -> str:
        return self.config.name

    def discover(self, state: SourceState) -> list[InputUnit]:
        import httpx

        shown = redact_url(str(httpx.URL(self.config.url).copy_merge_params(self.config.params)))
        if self.config.incremental is None:
            return [InputUnit(self.name, shown, None, None, None)]
        start = state.last_watermark
        window = state.watermark_window if start is not None else None
        return [InputUnit(self.name, shown, None, None, None, start, watermark_window=window)]

    def new_watermark(self) -> str | None:
        return self._window.watermark if self._window is not None else None

    def read_checksum(self) -> str | None:
        """sha256 of the records read, page by page (their JSON with sorted keys): equal for
        an unchanged answer, so an unchanged snapshot is not ingested again."""
        return self._digest.hexdigest() if self._digest is not None else None

    def watermark_window(self) -> StoredWindow | None:
        return self._window.window() if self._window is not None else None

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        import httpx

        token = self._token()
        headers = dict(self.config.headers)
        if token:
            headers.update(self.config.token_placement(token)[0])
        # httpx logs every request's full URL at INFO, query secrets (api_key=...) included;
        # this module logs the redacted URL itself
        logging.getLogger("httpx").setLevel(logging.WARNING)
        client = httpx.Client(timeout=self.config.timeout_s, headers=headers, follow_redirects=True)
        incremental = self.config.incremental
        since = None
        if incremental is not None:
            since = unit.watermark_from or incremental.initial
            self._window = WatermarkWindow(
                incremental.field,
                stored=unit.watermark_from,
                previous=unit.watermark_window,
                lookback=None,
                convert=TextValues(incremental.field),
                source=self.name,
            )
        pages = self._pages(client, token, since)
        batcher = TextBatcher(self.name, self.config.fields)
        try:
            first_records, first_label = next(pages)
            first = batcher.batch(first_records, first_label) if first_records else None
        except BaseException:
            client.close()
            raise
        if first is None:
            client.close()
            schema = pa.schema([(n, pa.string()) for n in self.config.fields or []])
            return pa.RecordBatchReader.from_batches(schema, iter(()))

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield first
                for records, label in pages:
                    if records:
                        yield batcher.batch(records, label)
            finally:
                client.close()

        if self._window is None:
            return pa.RecordBatchReader.from_batches(batcher.schema, batches())
        # the API answers from the stored value on (inclusive or not, APIs differ): the
        # records read before are dropped by their fingerprints
        try:
            index = self._field_index(batcher.schema)
        except SourceError:
            client.close()
            raise
        new_records = self._window.stream(batches(), index)
        return pa.RecordBatchReader.from_batches(batcher.schema, new_records)

    def _field_index(self, schema: pa.Schema) -> int:
        field = self.config.incremental.field if self.config.incremental else ""
        if field not in schema.names:
            raise SourceError(
                f"source {self.name!r}: incremental.field {field!r} is not in the records' "
                f"fields {schema.names}",
                source=self.name,
            )
        return schema.names.index(field)

    # -- paging ---------------------------------------------------------------------------------

    def _pages(
        self, client: Any, token: str | None, since: str | None = None
    ) -> Iterator[tuple[list[Any], str]]:
        """Yield (records, label) per page until the paging rule says the result is complete."""
        cfg, paging = self.config, self.config.paging
        params: dict[str, Any] = dict(cfg.params)
        self._digest = hashlib.sha256()
        if since is not None and cfg.incremental is not None:
            params[cfg.incremental.param] = since
        if token:
            params.update(cfg.token_placement(token)[1])
        if paging.type != "none" and paging.size_param and paging.page_size:
            params[paging.size_param] = paging.page_size
        page_no, offset, cursor = paging.start_page, 0, None
        seen_cursors: set[str] = set()
        previous_page: str | None = None
        fetched = 0
        while True:
            if paging.type == "page":
                params[paging.page_param] = page_no
            elif paging.type == "offset":
                params[paging.offset_param] = offset
            elif paging.type == "cursor" and cursor is not None:
                params[paging.cursor_param] = cursor
            label = f"page {fetched + 1} of"
            document = request_json(
                client,
                cfg.method,
                cfg.url,
                params=params,
                policy=self.policy,
                source=self.name,
                secrets=(token,),
                secret_params=(cfg.token_param,) if cfg.token_param else (),
                what=label,
            )
            records = self._records(document, label)
            fetched += 1
            page = json.dumps(records, sort_keys=True, default=str)
            self._digest.update(page.encode())
            if paging.type in ("page", "offset") and records:
                # An API that ignores the page parameter answers every request with the same
                # page: stop before appending it twice (cursor paging has seen_cursors).
                if page == previous_page:
                    raise SourceError(
                        f"source {self.name!r}: {label} {redact_url(cfg.url)} repeats the page "
                        f"before it: the API ignores '{self._position_param()}'; check "
                        "paging.page_param / paging.offset_param",
                        source=self.name,
                    )
                previous_page = page
            yield records, f"{label} {redact_url(cfg.url)}"
            if paging.type == "none" or (not records and paging.type != "cursor"):
                return
            if cfg.max_pages is not None and fetched >= cfg.max_pages:
                log.warning(
                    "source %s: stopped after max_pages=%d; records after that page were not read",
                    self.name,
                    cfg.max_pages,
                )
                return
            if paging.type in ("page", "offset"):
                # Many APIs cap the page size below the one asked for, so a short page is not
                # the end unless the configuration says so: the end is an empty page.
                short = paging.page_size is not None and len(records) < paging.page_size
                if short and paging.stop_on_short_page:
                    return
                page_no += 1
                offset += len(records)
            else:
                cursor = self._next_cursor(document)
                if cursor is None:
                    return
                if cursor in seen_cursors:
                    raise SourceError(
                        f"source {self.name!r}: the API returned cursor {cursor!r} twice; "
                        "stopping to avoid an endless loop",
                        source=self.name,
                    )
                seen_cursors.add(cursor)

    def _position_param(self) -> str:
        paging = self.config.paging
        return paging.page_param if paging.type == "page" else paging.offset_param

    def _records(self, document: Any, label: str) -> list[Any]:
        path = self.config.records_path
        try:
            records = dig(document, path)
        except KeyError as missing:
            raise SourceError(
                f"source {self.name!r}: {label} {redact_url(self.config.url)}: the response has "
                f"no {path!r} (missing key {missing.args[0]!r}); check records_path",
                source=self.name,
            ) from None
        if records is None:
            return []
        if not isinstance(records, list):
            raise SourceError(
                f"source {self.name!r}: {label} {redact_url(self.config.url)}: "
                f"{path or 'the body'!r} is a {type(records).__name__}, expected a list of records",
                source=self.name,
            )
        return records

    def _next_cursor(self, document: Any) -> str | None:
        try:
            value = dig(document, self.config.paging.cursor_path)
        except KeyError:
            return None
        return None if value in (None, "") else str(value)

    def _token(self) -> str | None:
        env = self.config.token_env
        if not env:
            return None
        # a token read from a mounted secret file often ends with a line break
        token = (os.environ.get(env) or "").strip()
        if not token:
            raise ConfigError(
                f"source {self.name!r}: environment variable {env} (token_env) is not set",
                key=f"sources.{self.name}.token_env",
            )
        if not all(" " < c < "\x7f" for c in token):
            # the HTTP client's own error would quote the header, token and all
            raise ConfigError(
                f"source {self.name!r}: environment variable {env} (token_env) holds a space, "
                "a control character or a non-ASCII character, which no header or URL "
                "parameter carries as it is: check how the variable is set",
                key=f"sources.{self.name}.token_env",
            )
        return token
