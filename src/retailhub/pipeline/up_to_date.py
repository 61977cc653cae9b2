"""Whether a run may leave the published star schema and marts as they are.

A scheduled run that finds no new input (the usual case for an hourly schedule between file
drops) would otherwise rebuild the star schema and every mart from the whole history — about
40 s at 10M transaction rows, and on PostgreSQL after streaming that history back — only to
publish the tables it already has. So transform, analytics and publish build nothing when all
of these hold:

* no dataset received an input row in this run (nothing accepted, nothing quarantined);
* the last build that was published (it has lineage into ``core``, written in the publishing
  transaction) used the same **build fingerprint**: the configuration after
  profiles and environment overrides, the retailhub code (every module, model and sidecar of
  the installed package), the project's own ``models/`` folder, and what decides how personal
  data is published (a digest of ``RETAILHUB_PSEUDONYM_KEY``, whether the warehouse has an
  analyst role);
* every ``core`` and ``marts`` table that build published (its lineage), and the SCD2
  history tables, are still in the warehouse;
* the run is not a ``--full-refresh`` (the way to force a rebuild).

Anything else rebuilds, as before. The tasks still run and are recorded; their output names
the run whose build is current, which the summary prints.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import retailhub
from retailhub.models.graph import Model
from retailhub.pipeline import publish_policy
from retailhub.pipeline.context import PUBLISHED_SCHEMAS, RunContext
from retailhub.pipeline.incremental import SCD_DIMENSIONS, history_table
from retailhub.pipeline.plan import INGEST, TRANSFORM, VALIDATE
from retailhub.warehouse import pseudonymise

log = logging.getLogger(__name__)

#: Payload key of the transform (and analytics) output when the published build is current.
UP_TO_DATE = "up_to_date_with"
FINGERPRINT = "fingerprint"
_CODE_SUFFIXES = (".py", ".sql", ".yml", ".yaml")


def build_fingerprint(ctx: RunContext, extra_model_dirs: Sequence[Path] = ()) -> str:
    """A digest of everything besides the input rows that decides what a build produces."""
    digest = hashlib.sha256()
    digest.update(ctx.settings.build_fingerprint().encode())
    # Publishing personal data depends on these, not on the settings: a key set or changed,
    # or an analyst role created, changes what the analyst-facing tables must hold.
    key = pseudonymise.key_from_env()
    digest.update(hmac.new(key, b"retailhub build", "sha256").digest() if key else b"no key")
    digest.update(b"analyst role" if publish_policy.has_analyst_role(ctx.warehouse) else b"-")
    package = Path(retailhub.__file__).resolve().parent
    roots = [("retailhub", package), *((f"models{i}", d) for i, d in enumerate(extra_model_dirs))]
    for label, root in roots:
        for path in sorted(p for p in root.rglob("*") if p.suffix in _CODE_SUFFIXES):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(f"{label}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def current_build(ctx: RunContext, models: Iterable[Model], fingerprint: str) -> str | None:
    """The run whose published build this run would reproduce, or None when it must build."""
    if ctx.full_refresh or not ctx.publishes or _new_input_rows(ctx) or _corrections(ctx):
        return None
    last = _last_build(ctx)
    if last is None or last.get(FINGERPRINT) != fingerprint:
        return None
    built_by = str(last["run_id"])
    missing = [t for t in _published_by(ctx, built_by, models) if not ctx.warehouse.table_exists(t)]
    if missing:
        log.info("rebuilding: %s is no longer in the warehouse", ", ".join(missing))
        return None
    return built_by


def _published_by(ctx: RunContext, run_id: str, models: Iterable[Model]) -> set[str]:
    """The analyst-facing tables the run ``run_id`` published: the models' tables, the marts
    and SCD2 histories in its lineage."""
    res = ctx.warehouse.query(
        "select distinct target_table from meta.lineage where run_id = ?", [run_id]
    )
    tables = {f"{m.schema}.{m.name}" for m in models if m.schema in PUBLISHED_SCHEMAS}
    tables |= {str(t) for (t,) in res.rows if str(t).split(".")[0] in PUBLISHED_SCHEMAS}
    tables |= {history_table(d) for d in SCD_DIMENSIONS if d in tables}
    return tables


def up_to_date_with(ctx: RunContext) -> str | None:
    """The run named by this run's transform output when it found the build current."""
    value = ctx.payload(TRANSFORM).get(UP_TO_DATE)
    return str(value) if value else None


def _new_input_rows(ctx: RunContext) -> int:
    return sum(
        int(out.payload.get("input_rows") or 0)
        for name, out in ctx.outputs.items()
        if name.startswith(f"{VALIDATE}:")
    )


def _corrections(ctx: RunContext) -> bool:
    """Whether a changed file replaces an earlier version: even one with no row left takes
    that version's rows out of the history, so the star schema must be rebuilt."""
    return any(
        out.payload.get("replaces")
        for name, out in ctx.outputs.items()
        if name.startswith(f"{INGEST}:")
    )


def _last_build(ctx: RunContext) -> dict | None:
    """The transform output (fingerprint, run id) of the latest build that was published.

    Published means it has lineage rows, which are written in the publishing transaction
    itself: a run killed after its publish committed but before the ledger marked it a
    success still counts, and a run whose publish failed does not.
    """
    res = ctx.warehouse.query(
        "select t.run_id, t.output_json from meta.task_runs t "
        "where t.task = ? and t.status = 'success' and t.run_id <> ? "
        "and exists (select 1 from meta.lineage l where l.run_id = t.run_id "
        "and l.target_table like 'core.%') "
        "order by t.finished_at desc limit 1",
        [TRANSFORM, ctx.run_id],
    )
    if not res.rows or not res.rows[0][1]:
        return None
    run_id, output = res.rows[0]
    payload = json.loads(output)
    return {"run_id": run_id, FINGERPRINT: payload.get(FINGERPRINT)}
