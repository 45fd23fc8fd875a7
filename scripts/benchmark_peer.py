"""upseg's planned recipe against segmentation_models.pytorch's Unet in a plain loop, at equal wall-clock.

    python scripts/benchmark_peer.py run --out DIR [--isbi2012 PATH] [--drive PATH] [--datasets shapes,isbi2012,drive]
        [--recipes smp_unet,transpose,bilinear,dysample] [--seeds 0,1,2] [--seconds 600] [--threads 2]
        [--peer-crop 192 --peer-batch 8 --peer-lr 0.001]
    python scripts/benchmark_peer.py table --out DIR [same --datasets, --recipes, --seeds]

``run`` runs every cell (dataset × recipe × seed) not yet finished, each in a fresh process, then writes the table
(DIR/table.md, DIR/table.csv); rerun it to resume. Needs ``pip install -e ".[peer]"``. See upseg.peer.
"""

import argparse
import json
import sys
from pathlib import Path

from upseg.errors import UpsegError
from upseg.peer.cells import DATASETS, PEER, UPSEG_RECIPES, data_overrides, peer_cell, run_benchmark
from upseg.peer.loop import PeerRecipe
from upseg.peer.table import write_table

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "table"):
        command = commands.add_parser(name)
        command.add_argument("--out", type=Path, required=True, help="the benchmark's folder (cells, table)")
        command.add_argument(
            "--datasets", default=",".join(DATASETS), help="comma separated, of " + ", ".join(DATASETS)
        )
        command.add_argument("--recipes", default=",".join((PEER, *UPSEG_RECIPES)), help="smp_unet and decoders")
        command.add_argument("--seeds", default="0,1,2")
        command.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
        if name == "run":
            for dataset in DATASETS:
                if dataset != "shapes":
                    command.add_argument(f"--{dataset}", help=f"the {dataset} folder as published")
            command.add_argument("--seconds", type=int, default=600, help="wall-clock budget of each run")
            command.add_argument("--threads", type=int, default=None, help="torch threads of each run")
            defaults = PeerRecipe()
            command.add_argument("--peer-crop", type=int, default=defaults.crop, help="the peer loop's crop")
            command.add_argument("--peer-batch", type=int, default=defaults.batch, help="the peer loop's batch")
            command.add_argument("--peer-lr", type=float, default=defaults.lr, help="the peer loop's Adam rate")
    cell = commands.add_parser("cell", help="one peer cell (what run starts in a fresh process)")
    cell.add_argument("spec", help="the cell as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "cell":
            peer_cell(REPO / "configs", json.loads(args.spec))
            return 0
        datasets, recipes = args.datasets.split(","), args.recipes.split(",")
        seeds = [int(seed) for seed in args.seeds.split(",")]
        failed = []
        if args.command == "run":
            roots = {name: getattr(args, name) for name in DATASETS if getattr(args, name, None)}
            overrides = {name: data_overrides(name, roots) for name in datasets}
            peer = {"crop": args.peer_crop, "batch": args.peer_batch, "lr": args.peer_lr}
            failed = run_benchmark(REPO, args.out, overrides, recipes, seeds, args.seconds, args.threads, peer=peer)
        print(write_table(args.out, datasets, recipes, seeds, args.samples), end="")  # the markdown ends its line
    except UpsegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
