"""Typed configuration of the ``sources:`` section of a project file.

One pydantic model per source ``type`` (csv, parquet, json, http, database), joined in a
discriminated union so a YAML mapping is validated against exactly one variant and an unknown key
fails with its name. Secrets never live here: the HTTP bearer token and the database password are
read from environment variables named in the config (``token_env``, ``password_env``), and a
password written into a database URL or an ``Authorization`` header is rejected.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from retailhub.errors import ConfigError

# Header names that carry credentials; they must come from ``token_env`` instead.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})
_DB_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def own_dataset_problem(name: str) -> str | None:
    """Why a source with layout none and no ``dataset`` cannot feed the dataset of its own
    name (it names warehouse tables), or None."""
    if not name or _TABLE_NAME.fullmatch(name):
        return None
    return (
        f"a source with layout none feeds the dataset of its own name, and {name!r} is not a "
        "table name (lowercase letters, digits, underscores): rename the source or give it "
        "a dataset"
    )


class _SourceBase(BaseModel):
    """Fields every source shares: where its rows go and how they map onto a layout."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    layout: str
    dataset: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    date_format: str | None = None
    enabled: bool = True

    @field_validator("dataset")
    @classmethod
    def _dataset_is_a_table_name(cls, value: str | None) -> str | None:
        # The dataset names warehouse tables (raw.<dataset>, quarantine.<dataset>).
        if value is not None and not _TABLE_NAME.fullmatch(value):
            raise ValueError(
                f"dataset {value!r} must be a table name: lowercase letters, digits and "
                "underscores, not starting with a digit"
            )
        return value

    @model_validator(mode="after")
    def _default_dataset(self) -> _SourceBase:
        # Several sources may feed one dataset; by default a source feeds the dataset named
        # after its layout (a pass-through source has no layout, so it feeds its own name).
        if self.dataset is None and self.layout != "none":
            self.dataset = self.layout
        elif self.dataset is None and (problem := own_dataset_problem(self.name)):
            raise ValueError(problem)
        return self

    @property
    def target_dataset(self) -> str:
        """Dataset the rows of this source land in (pass-through sources: the source name)."""
        return self.dataset or self.name


class FileSourceConfig(_SourceBase):
    """What every file source is configured with: a path or glob relative to the project."""

    path: str = Field(min_length=1)
    on_changed_file: Literal["refuse", "replace"] = Field(
        default="refuse",
        description="A file already ingested that comes back with other bytes: 'refuse' stops "
        "the run (exit 3) naming it; 'replace' takes it as a correction, whose rows replace "
        "every row the earlier version brought (raw history, quarantine, facts).",
    )


class CsvSourceConfig(FileSourceConfig):
    """Delimited text files; every column is read as text and cast later by the layout."""

    type: Literal["csv"] = "csv"
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote: str = Field(default='"', min_length=1, max_length=1)
    header: bool = True
    null_values: list[str] = Field(default_factory=lambda: [""])

    @model_validator(mode="after")
    def _known_encoding(self) -> CsvSourceConfig:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(
                f"unknown encoding {self.encoding!r} "
                "(try utf-8, utf-8-sig, cp1252, latin-1, utf-16)"
            ) from None
        if self.delimiter == self.quote:
            raise ValueError("delimiter and quote must differ")
        return self


class ParquetSourceConfig(FileSourceConfig):
    """Parquet files, read row group by row group with their own types."""

    type: Literal["parquet"] = "parquet"


class JsonSourceConfig(FileSourceConfig):
    """A JSON document holding a list of records, or newline-delimited JSON (one per line)."""

    type: Literal["json"] = "json"
    format: Literal["json", "ndjson"] | None = None
    records_path: str | None = None
    fields: list[str] | None = None

    @property
    def resolved_format(self) -> Literal["json", "ndjson"]:
        """``format`` if given, else guessed from the extension (.ndjson/.jsonl -> ndjson)."""
        if self.format is not None:
            return self.format
        suffix = PurePosixPath(self.path.replace("\\", "/")).suffix.lower()
        return "ndjson" if suffix in (".ndjson", ".jsonl") else "json"


class PagingConfig(BaseModel):
    """How an HTTP API splits a result into pages."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["none", "page", "cursor", "offset"] = "none"
    page_param: str = "page"
    offset_param: str = "offset"
    size_param: str | None = "page_size"
    page_size: int | None = Field(default=100, gt=0)
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    start_page: int = 1
    #: page/offset paging ends at an empty page (one request more than the data needs, but
    #: safe with APIs that cap page_size); true ends at the first page shorter than page_size
    stop_on_short_page: bool = False

    @model_validator(mode="after")
    def _cursor_needs_path(self) -> PagingConfig:
        if self.type == "cursor" and not self.cursor_path:
            raise ValueError("cursor paging needs cursor_path (where the next cursor is)")
        return self


class HttpIncremental(BaseModel):
    """An API that filters its records by a value sent as a query parameter (``updated_since``)
    and gives each record that value in a field (``updated_at``)."""

    model_config = ConfigDict(extra="forbid")

    param: str = Field(min_length=1)
    field: str = Field(min_length=1)
    #: sent on the first run (else the first run reads every record)
    initial: str | None = None


class HttpSourceConfig(_SourceBase):
    """A JSON HTTP API read page by page; its token comes from the variable ``token_env``."""

    type: Literal["http"] = "http"
    url: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = None
    #: where the token goes: this header (``Authorization``, as ``Bearer <token>``, unless
    #: ``token_prefix`` says otherwise; another header gets the token as it is) ...
    token_header: str = "Authorization"
    token_prefix: str | None = None
    #: ... or this query parameter instead (``api_key``), masked wherever the URL is shown
    token_param: str | None = None
    records_path: str = ""
    paging: PagingConfig = Field(default_factory=PagingConfig)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    max_pages: int | None = Field(default=None, gt=0)
    fields: list[str] | None = None
    mode: Literal["snapshot", "append"] = Field(
        default="snapshot",
        description="What each run's records are: 'snapshot' (the API answers with all its "
        "records every time) replaces the records of the source's previous extraction in "
        "the raw history, quarantine and facts; 'append' adds them (a feed that answers "
        "with new records only).",
    )
    #: a snapshot with no record, where the last one had some, stops the run unless true
    allow_empty_snapshot: bool = False
    #: read only what changed since the last run (implies mode: append)
    incremental: HttpIncremental | None = None

    @model_validator(mode="after")
    def _no_secrets(self) -> HttpSourceConfig:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError("url must start with http:// or https://")
        for header in self.headers:
            if header.lower() in _SECRET_HEADERS:
                raise ValueError(
                    f"header {header!r} carries a credential: put the token in an environment "
                    f"variable, name it with token_env and set token_header: {header}"
                )
        placed = self.token_param is not None or {"token_header", "token_prefix"} & (
            self.model_fields_set
        )
        if placed and not self.token_env:
            raise ValueError(
                "token_header/token_prefix/token_param need token_env (the token's variable)"
            )
        if self.token_param is not None and "token_header" in self.model_fields_set:
            raise ValueError("give token_header or token_param, not both")
        if self.incremental is not None:
            if "mode" in self.model_fields_set and self.mode == "snapshot":
                raise ValueError(
                    "an incremental API answers with what changed, not with a snapshot: "
                    "remove mode: snapshot (incremental implies mode: append)"
                )
            self.mode = "append"
        return self

    def token_placement(self, token: str) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, query params) that carry ``token``."""
        if self.token_param is not None:
            return {}, {self.token_param: token}
        prefix = self.token_prefix
        if prefix is None:
            prefix = "Bearer " if self.token_header.lower() == "authorization" else ""
        elif prefix and not prefix.endswith(" "):
            prefix += " "
        return {self.token_header: prefix + token}, {}


Lookback = timedelta | Decimal

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_lookback(value: str | float | int | None) -> Lookback | None:
    """``'15m'``/``'2h'``/``'1d'``/``'30s'`` for a time watermark, a number for a numeric one.

    Raises ValueError (a configuration error) for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("watermark_lookback must be a duration such as '15m' or a number")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("watermark_lookback must not be negative")
        return Decimal(str(value))
    match = _DURATION.match(value)
    if match:
        return timedelta(seconds=float(match[1]) * _SECONDS[match[2].lower()])
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(
            f"watermark_lookback {value!r}: expected a duration (30s, 15m, 2h, 1d) for a time "
            "watermark or a number for a numeric one"
        ) from None
    if number < 0:
        raise ValueError("watermark_lookback must not be negative")
    return number


class DatabaseSourceConfig(_SourceBase):
    """A table or query in PostgreSQL or MySQL/MariaDB, optionally extracted incrementally."""

    type: Literal["database"] = "database"
    url: str
    password_env: str | None = None
    table: str | None = None
    query: str | None = None
    watermark_column: str | None = None
    #: re-read rows this far below the stored watermark (``15m``, ``2h``, ``1d`` for a time
    #: column, a number for a numeric one), for rows that commit late with an older value
    watermark_lookback: str | float | None = None
    batch_size: int = Field(default=50_000, gt=0)

    @model_validator(mode="after")
    def _check(self) -> DatabaseSourceConfig:
        parts = urlsplit(self.url)
        if parts.scheme.split("+")[0] not in _DB_SCHEMES:
            raise ValueError("url must start with postgresql://, mysql:// or mariadb://")
        if parts.password is not None:
            # The message must not repeat the URL: it holds the password.
            raise ValueError(
                "url contains a password: remove it and name an environment variable with "
                "password_env (or set PGPASSWORD / MYSQL_PWD)"
            )
        if not parts.hostname:
            raise ValueError("url has no host")
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.watermark_lookback is not None:
            if not self.watermark_column:
                raise ValueError("watermark_lookback needs a watermark_column")
            parse_lookback(self.watermark_lookback)  # raises ValueError naming what it expects
        return self

    @property
    def lookback(self) -> Lookback | None:
        """``watermark_lookback`` parsed: a timedelta, a Decimal, or None."""
        return parse_lookback(self.watermark_lookback)

    @property
    def dialect(self) -> Literal["postgresql", "mysql"]:
        """``postgresql`` or ``mysql`` (MariaDB speaks the MySQL protocol)."""
        scheme = urlsplit(self.url).scheme.split("+")[0]
        return "postgresql" if scheme.startswith("postgres") else "mysql"


SourceConfig = Annotated[
    CsvSourceConfig
    | ParquetSourceConfig
    | JsonSourceConfig
    | HttpSourceConfig
    | DatabaseSourceConfig,
    Field(discriminator="type"),
]
FileSourceConfig = CsvSourceConfig | ParquetSourceConfig | JsonSourceConfig

_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


def parse_source_config(
    name: str, raw: Mapping[str, Any], *, file: str | None = None
) -> SourceConfig:
    """Validate one entry of ``sources:``; errors name the file and the dotted key.

    Input values are deliberately left out of the message: a rejected URL may hold a password.
    """
    data = dict(raw)
    data["name"] = name
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            parts = list(err["loc"])
            if parts and parts[0] == data.get("type"):
                parts = parts[1:]  # drop the union tag pydantic puts first
            loc = ".".join(str(p) for p in parts)
            key = f"sources.{name}" + (f".{loc}" if loc else "")
            problems.append(f"{key}: {err['msg']}")
        where = f"{file}: " if file else ""
        first_key = problems[0].split(":", 1)[0] if problems else f"sources.{name}"
        raise ConfigError(
            f"{where}invalid source {name!r}: " + "; ".join(problems), file=file, key=first_key
        ) from None
