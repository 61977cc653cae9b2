"""Benchmark the demo generator: wall time, throughput and peak RSS for one size.

Usage: ``.venv/bin/python benchmarks/bench_generate.py --rows 10000000 --out /tmp/bench``.
Runs in this process and reports ``ru_maxrss`` (peak resident memory of the process,
interpreter and imports included). The output folder is deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

from retailhub.demo import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--defect-rate", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("/tmp/retailhub-bench-generate"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    report = generate(args.out, args.rows, seed=args.seed, defect_rate=args.defect_rate)
    seconds = time.perf_counter() - began
    result = {
        "rows": args.rows,
        "seconds": round(seconds, 2),
        "rows_per_second": round(args.rows / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "bytes_written": report.total_bytes,
        "rows_written": report.rows,
    }
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
