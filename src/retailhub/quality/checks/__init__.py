"""Compiled rules: each rule config becomes one object that knows its SQL fragments."""

from retailhub.quality.checks.base import (
    SAMPLE_SIZE,
    Check,
    Env,
    RuleInfo,
    Samples,
    SampleSpec,
    pass_rate_result,
)
from retailhub.quality.checks.dataset import (
    ColumnFreshnessCheck,
    CompletenessCheck,
    FileFreshnessCheck,
    VolumeCheck,
)
from retailhub.quality.checks.row import (
    RowCheck,
    accepted_values_check,
    range_check,
    referenced_columns,
    referential_check,
    regex_check,
    uniqueness_check,
    validity_check,
)
from retailhub.quality.checks.types import TypeErrorChecks

__all__ = [
    "SAMPLE_SIZE",
    "Check",
    "ColumnFreshnessCheck",
    "CompletenessCheck",
    "Env",
    "FileFreshnessCheck",
    "RowCheck",
    "RuleInfo",
    "SampleSpec",
    "Samples",
    "TypeErrorChecks",
    "VolumeCheck",
    "accepted_values_check",
    "pass_rate_result",
    "range_check",
    "referenced_columns",
    "referential_check",
    "regex_check",
    "uniqueness_check",
    "validity_check",
]
