"""The benchmark harness behind ``retailhub bench`` and ``make bench``.

Generation and the pipeline each run in a child process so their peak memory is measured
separately (sampled RSS of the child and its children); per-stage timings come from the
run ledger, the same numbers ``retailhub runs show`` prints. The pipeline's CPU seconds
(user + system, DuckDB's threads included) are reported next to its wall time: on a shared
machine the wall time of identical runs minutes apart differs by 10 %, so a change smaller
than that shows in CPU seconds first.

The analytics stage is also reported on its own, and the run without it: the two have
separate budgets (the spine, ingest to publish, and what the analytics marts add on top).

What is measured is always a first run into an empty warehouse: a reused ``--workdir`` (one
bench made, marked by a ``.retailhub-bench`` file) gets its generated data, warehouse and
scratch folders replaced — a second run on the same files would find nothing new and build
nothing — and a warehouse (``--warehouse`` or the environment's) that already holds runs is
refused.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from retailhub.config.scaffold import scaffold


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(cmd: list[str], cwd: Path) -> tuple[float, float, int, int]:
    """Run ``cmd``; return (seconds, CPU seconds, peak RSS bytes, exit code)."""
    cpu0 = _children_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
            while not stop.is_set():
                rss = p.memory_info().rss + sum(
                    c.memory_info().rss for c in p.children(recursive=True)
                )
                peak = max(peak, rss)
                time.sleep(0.05)
        except psutil.Error:
            pass

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, stderr = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    seconds = time.perf_counter() - t0
    return seconds, _children_cpu_seconds() - cpu0, peak, proc.returncode


BENCH_MARKER = ".retailhub-bench"


def _require_bench_folder(base: Path) -> None:
    """Only a folder bench made (or an empty one) has its data and warehouse replaced."""
    from retailhub.errors import UsageError

    if base.is_dir() and any(base.iterdir()) and not (base / BENCH_MARKER).is_file():
        raise UsageError(
            f"--workdir {base} is not empty and was not made by 'retailhub bench', which "
            "replaces a workdir's data/, warehouse/ and .retailhub/: choose an empty folder"
        )


def _fate(project: Any, keep: bool, workdir: Path | None) -> str:
    """What becomes of the benchmarked warehouse: only one inside the temporary folder goes."""
    url = project.settings.warehouse.url
    inside = url.startswith("duckdb:///") and not Path(url.removeprefix("duckdb:///")).is_absolute()
    if not inside:
        return " (left in place: the next bench needs it emptied or another empty database)"
    return "" if keep or workdir is not None else " (removed; --keep keeps it)"


def _require_empty(project: Any) -> None:
    """A benchmark of a first run needs a warehouse without earlier runs."""
    from retailhub.errors import RetailhubError, UsageError

    try:
        runs = project.runs(1)
    except RetailhubError:
        return  # no ledger yet: an empty warehouse
    if runs:
        raise UsageError(
            f"bench measures a first run, but warehouse {project.settings.warehouse.url}, "
            f"{project.loaded.origin('warehouse.url')}, already holds runs (the latest "
            f"{runs[0]['run_id']}): point --warehouse at an empty database"
        )


def run_benchmark(
    *,
    rows: int,
    workdir: Path | None = None,
    warehouse_url: str | None = None,
    keep: bool = False,
    seed: int = 42,
) -> dict[str, Any]:
    """Generate ``rows`` transaction rows (+ proportional datasets) and run the pipeline."""
    from retailhub.pipeline.project import Project

    base = Path(workdir or tempfile.mkdtemp(prefix="retailhub-bench-")).resolve()
    _require_bench_folder(base)
    base.mkdir(parents=True, exist_ok=True)
    try:
        for previous in ("data", "warehouse", ".retailhub"):
            shutil.rmtree(base / previous, ignore_errors=True)
        scaffold(base, force=True)
        (base / BENCH_MARKER).write_text("created by retailhub bench\n", encoding="utf-8")
        _require_empty(Project.load(base, warehouse_url=warehouse_url))
        exe = [sys.executable, "-m", "retailhub.cli.main"]
        gen_s, _, gen_peak, _ = _measure(
            [
                *exe,
                "-q",
                "generate",
                "--out",
                str(base / "data"),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
            ],
            base,
        )
        run_cmd = [*exe, "-q", "run", "--project", str(base)]
        if warehouse_url:
            run_cmd += ["--warehouse", warehouse_url]
        run_s, run_cpu, run_peak, code = _measure(run_cmd, base)
        project = Project.load(base, warehouse_url=warehouse_url)
        run_id = project.runs(1)[0]["run_id"]
        detail = project.run_detail(run_id)
        stages = []
        for t in detail["tasks"]:
            secs = t["seconds"] or 0.0
            n = t["rows_in"] if t["rows_in"] is not None else t["rows_out"]
            stages.append(
                {
                    "task": t["task"],
                    "status": t["status"],
                    "seconds": round(secs, 2),
                    "rows": n,
                    "rows_per_s": round(n / secs) if n and secs else None,
                }
            )
        analytics_s = sum(s["seconds"] for s in stages if s["task"] == "analytics")
        summary = {
            "transaction_rows": rows,
            "generate_s": round(gen_s, 1),
            "generate_peak_mb": round(gen_peak / 2**20),
            "pipeline_s": round(run_s, 1),
            "pipeline_rows_per_s": round(rows / run_s),
            "pipeline_cpu_s": round(run_cpu, 1),
            "analytics_s": round(analytics_s, 1),
            "without_analytics_s": round(run_s - analytics_s, 1),
            "pipeline_peak_mb": round(run_peak / 2**20),
            "exit_code": code,
            "warehouse": detail["run"]["warehouse_url"] + _fate(project, keep, workdir),
        }
        return {"stages": stages, "summary": summary, "workdir": str(base)}
    finally:
        if not keep and workdir is None:
            shutil.rmtree(base, ignore_errors=True)
