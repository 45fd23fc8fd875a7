"""Compare the runs of a sweep: ``python scripts/compare.py SWEEP_DIR [--baseline transpose]`` writes
comparison.{csv,md,png} and comparison_summary.csv there."""

import argparse
import sys
from pathlib import Path

from upseg.analysis.compare import compare
from upseg.errors import UpsegError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dir", help="a multirun folder, e.g. logs/train/multiruns/<time>")
    parser.add_argument("--baseline", default="transpose", help="the decoder every other is compared with")
    parser.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--confidence", type=float, default=0.95, help="of the intervals")
    parser.add_argument("--seed", type=int, default=0, help="of the resampling")
    args = parser.parse_args()
    try:
        comparison = compare(args.sweep_dir, args.baseline, args.samples, args.confidence, args.seed)
    except UpsegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((Path(args.sweep_dir) / "comparison.md").read_text())
    return 1 if any(row["status"] != "ok" for row in comparison.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
