"""Typed settings of a retailhub project.

The project file (``retailhub.yaml``) is parsed into these models after ``${VAR}``
expansion and profile merging; ``RETAILHUB_...`` environment variables then override any
key (``__`` nests: ``RETAILHUB_WAREHOUSE__URL``). Every model forbids unknown keys, so a
typo fails loudly with the key named instead of being ignored.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from retailhub.config.quality import QualityConfig
from retailhub.config.sources import SourceConfig

Profile = Literal["dev", "staging", "prod"]
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%|b|bytes|[kmgt]i?b?)\s*", re.IGNORECASE)
#: A floor, not advice: 0GB failed with "failed to pin block"; 64MB carries a 5,000-row demo
#: (100,000 rows need more), and the default 1.25GB carries 10M rows.
_MIN_MEMORY_BYTES = 64 * 1000**2


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarehouseConfig(StrictModel):
    """Where published tables go. The password never lives in the file."""

    url: str = "duckdb:///warehouse/retailhub.duckdb"
    password: SecretStr | None = Field(
        default=None,
        description="From RETAILHUB_WAREHOUSE__PASSWORD (or PGPASSWORD) only, never from YAML.",
    )
    connect_timeout_s: float = 10.0
    history_cache: bool = Field(
        default=True,
        description="PostgreSQL: keep a local copy of the raw history (under runner.work_dir/"
        "history) and fetch only the runs it lacks, instead of streaming all of it every run.",
    )


class RunnerConfig(StrictModel):
    """How the in-process runner executes the task graph."""

    retries: int = Field(default=2, ge=0, description="Extra attempts for transient failures.")
    backoff_s: float = Field(default=1.0, ge=0)
    memory_limit: str = Field(
        default="1.25GB", description="DuckDB's memory budget: 1.25GB, 512MiB, 80% (of RAM)."
    )
    threads: int | None = None
    work_dir: str = ".retailhub/work"
    keep_work_db: bool = False

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        # checked here, so a wrong value is a configuration error naming the key, not a
        # DuckDB parser error when the warehouse opens
        match = _MEMORY.fullmatch(value)
        if not match:
            raise ValueError("expected a size such as 1.25GB, 512MiB or 80%")
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit == "%":
            if not 0 < number <= 100:
                raise ValueError(f"{value!r}: a share of the RAM must be above 0% and at most 100%")
            return value
        power = "bkmgt".index(unit[0])
        base = 1024 if "i" in unit else 1000
        if number * base**power < _MIN_MEMORY_BYTES:
            raise ValueError(f"{value!r} is too small: DuckDB needs at least 64MB")
        return value


class AnalyticsConfig(StrictModel):
    """Parameters of the analytics marts (schema ``marts``; see docs/analytics.md)."""

    enabled: bool = True
    churn_horizon_days: int = Field(default=90, gt=0)
    churn_min_auc: float = Field(
        default=0.6,
        ge=0.5,
        le=1.0,
        description="Churn scores are published only above this ROC AUC (and the baseline's).",
    )
    churn_fit_customers: int = Field(
        default=20_000, gt=0, description="Customers (hash sample) the churn model trains on."
    )
    clv_fit_customers: int = Field(
        default=10_000, gt=0, description="Customers (hash sample) BG/NBD and Gamma-Gamma fit on."
    )
    forecast_horizon_weeks: int = Field(default=12, gt=0)
    forecast_horizon_months: int = Field(default=6, gt=0)
    anomaly_threshold: float = Field(default=3.5, gt=0)
    outlier_days: int = Field(
        default=365, gt=0, description="Order lines of the last N days are checked for outliers."
    )
    max_transaction_anomalies: int = Field(
        default=20, ge=0, description="Most extreme outlying lines kept per source and metric."
    )
    insight_anomaly_days: int = Field(
        default=28, gt=0, description="KPI anomalies of the last N days become insights."
    )
    top_insights: int = Field(default=5, ge=0)


class ProjectSettings(BaseSettings):
    """The whole project configuration, after profile merge and environment overrides."""

    model_config = SettingsConfigDict(
        env_prefix="RETAILHUB_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    project: str = "retailhub"
    description: str = ""
    warehouse: WarehouseConfig = WarehouseConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    runner: RunnerConfig = RunnerConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-profile overrides of any key (dev/staging/prod)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file: operators override a deployed project without editing it.
        return (env_settings, init_settings)

    def fingerprint(self) -> str:
        """A short digest of the effective settings (the ledger's ``config_hash``; a change
        makes the next run rebuild even without new input). Secrets are left out."""
        text = self.model_dump_json(exclude={"warehouse": {"password"}})
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def build_fingerprint(self) -> str:
        """A digest of the settings that decide what a build holds: sources, quality rules,
        analytics. How to reach the warehouse (its URL's connection options), how to run
        (retries, memory), the description and the other profiles do not: changing them
        must not make a run with no new input rebuild and republish everything."""
        text = self.model_dump_json(include={"project", "sources", "quality", "analytics"})
        return hashlib.sha256(text.encode()).hexdigest()[:16]
