"""Compare the runs of a sweep: ``python scripts/compare.py SWEEP_DIR`` writes comparison.{csv,md,png} there."""

import argparse
import sys
from pathlib import Path

from upseg.compare import compare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dir", help="a multirun folder, e.g. logs/train/multiruns/<time>")
    args = parser.parse_args()
    try:
        rows, _ = compare(args.sweep_dir)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((Path(args.sweep_dir) / "comparison.md").read_text())
    return 1 if any(row["status"] != "ok" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
