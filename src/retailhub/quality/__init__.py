"""retailhub quality layer: rule configs compiled to SQL, the accepted/quarantine split, scores.

Entry points: :func:`run_quality` (one dataset), :func:`raise_for_gate` (the publication gate),
:func:`build_scorecard`, :func:`validate_rules` (check rules against a schema with no data) and
:func:`default_rules` (built-in rule sets per layout).
"""

from retailhub.quality.binding import validate_rules
from retailhub.quality.gate import QualityContext, raise_for_gate, run_quality
from retailhub.quality.results import QualityOutcome, RuleResult, quality_score
from retailhub.quality.scorecard import Scorecard, build_scorecard, default_rules

__all__ = [
    "QualityContext",
    "QualityOutcome",
    "RuleResult",
    "Scorecard",
    "build_scorecard",
    "default_rules",
    "quality_score",
    "raise_for_gate",
    "run_quality",
    "validate_rules",
]
