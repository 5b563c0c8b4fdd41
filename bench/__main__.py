"""Benchmark runner: ``python -m bench [--scale 0.1] [name ...]``.

Each ``bench/bench_*.py`` has ``main(scale: float = 1.0)`` that prints ``name: ratio`` lines,
where ratio = our time / a baseline measured in the same run (machines here are shared and
noisy, so only same-run ratios mean anything). Benchmarks are not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("GC_ENV", "test")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (quick checks)")
    parser.add_argument("names", nargs="*", help="bench module names without the bench_ prefix (default: all)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    names = args.names or sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"# bench_{name} (scale {args.scale})", flush=True)
        module.main(scale=args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
