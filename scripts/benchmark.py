"""Time every upsampler forward+backward at decoder shapes: ``python scripts/benchmark.py [--quick] [--out DIR]``.

Prints a table of median times and ratios to ``transpose`` (nn.ConvTranspose2d) and, with ``--out``, writes
benchmark.json and benchmark.md there. See ``upseg.analysis.benchmark`` for what is measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from upseg.analysis.benchmark import (
    DECODER_SHAPES,
    DTYPES,
    Row,
    default_variants,
    device_description,
    known_variants,
    parse_shape,
    run_benchmark,
    throughput_markdown,
    unet_throughput,
    write_results,
)

FULL = {"batch": 16, "repeats": 10, "warmup": 2}
QUICK = {"batch": 4, "repeats": 3, "warmup": 1}
ENVIRONMENT = ("LD_PRELOAD", "MALLOC_CONF", "OMP_NUM_THREADS", "THP_MEM_ALLOC_ENABLE")  # recorded when set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shapes = ",".join(f"{s.in_channels}x{s.out_channels}@{s.size}" for s in DECODER_SHAPES)
    parser.add_argument(
        "--shapes", default=default_shapes, help=f"C_inxC_out@H, comma separated (default {default_shapes})"
    )
    parser.add_argument("--batch", type=int, help=f"batch size N (default {FULL['batch']})")
    parser.add_argument("--repeats", type=int, help=f"measured steps per variant (default {FULL['repeats']})")
    parser.add_argument("--warmup", type=int, help=f"unmeasured steps per variant first (default {FULL['warmup']})")
    parser.add_argument("--dtypes", default="fp32", help=f"comma separated, of {', '.join(DTYPES)} (default fp32)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    parser.add_argument("--scale", type=int, default=2, help="scale factor (default 2)")
    parser.add_argument(
        "--upsamplers",
        default=None,
        help="comma separated labels, e.g. transpose,direct[subpixel]; also carafe[unfold], carafe[torch], "
        "carafe[triton] and likewise fade[...], a reassembly path forced (the default carafe and fade take auto)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU intra-op threads (default: torch's)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short CPU run: batch {QUICK['batch']}, {QUICK['repeats']} repeats, {QUICK['warmup']} warm-up "
        "(flags given explicitly still win)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for benchmark.json and benchmark.md")
    parser.add_argument(
        "--unet",
        default=None,
        metavar="SIZE",
        type=int,
        help="also time U-Net training steps per decoder on SIZE×SIZE images (batch --batch; depth 4, width 32)",
    )
    parser.add_argument(
        "--rss",
        action="store_true",
        help="CPU: also measure each variant's peak resident memory in a fresh process (a few seconds each)",
    )
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer timing (e.g. with --unet)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def print_table(console: Console, rows: list[Row]) -> None:
    table = Table(title="forward+backward, median")
    for column in (
        "upsampler",
        "shape",
        "dtype",
        "wall",
        "× transpose",
        "CPU time",
        "× transpose ",
        "of it sys",
        "parameters",
        "GFLOPs",
        "peak",
        "process RSS",
    ):
        table.add_column(column, justify="left" if column in ("upsampler", "shape", "dtype") else "right")
    for row in rows:
        table.add_row(
            escape(row.variant),
            row.shape,
            row.dtype,
            f"{row.median_ms:.1f} ms",
            "" if row.ratio is None else f"{row.ratio:.2f}",
            "n/a" if row.cpu_ms is None else f"{row.cpu_ms:.1f} ms",
            "" if row.cpu_ratio is None else f"{row.cpu_ratio:.2f}",
            "n/a" if row.sys_ms is None else f"{row.sys_ms:.1f} ms",
            "" if row.parameters is None else f"{row.parameters:,}",
            "" if row.gflops is None else f"{row.gflops:.2f}",
            "n/a" if row.peak_mib is None else f"{row.peak_mib:.0f} MiB",
            "" if row.rss_mib is None else f"{row.rss_mib:.0f} MiB",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # rich would wrap a piped table at 80 columns
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    device = torch.device(device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        shapes = [parse_shape(text) for text in args.shapes.split(",")]
        dtypes = [DTYPES[name] for name in args.dtypes.split(",")]
    except (ValueError, KeyError) as error:
        console.print(f"error: {error}", style="red")
        return 2
    variants = default_variants()
    if args.upsamplers is not None:
        wanted = args.upsamplers.split(",")
        known = known_variants()
        unknown = sorted(set(wanted) - {v.label for v in known})
        if unknown:
            console.print(f"error: unknown upsamplers {unknown}; valid: {[v.label for v in known]}", style="red")
            return 2
        variants = [v for v in known if v.label in wanted]

    meta = {
        "device": device_description(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "batch": args.batch,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "scale_factor": args.scale,
        "command": " ".join(sys.argv),
        # On the CPU the allocator decides how often large tensors are mapped anew (see docs/benchmarks.md).
        "environment": {key: os.environ[key] for key in ENVIRONMENT if key in os.environ},
    }
    console.print(f"{meta['device']}, torch {meta['torch']}, batch {args.batch}, {args.repeats} repeats")
    for key, value in meta["environment"].items():
        console.print(escape(f"{key}={value}"))
    rows = (
        []
        if args.no_layers
        else run_benchmark(
            shapes,
            variants,
            batch=args.batch,
            dtypes=dtypes,
            device=device,
            repeats=args.repeats,
            warmup=args.warmup,
            scale_factor=args.scale,
            resident=args.rss,
            progress=lambda row: console.print(
                f"  {row.variant:24} {row.shape:18} {row.median_ms:9.1f} ms", markup=False
            ),
        )
    )
    if rows:
        print_table(console, rows)
    throughput = []
    if args.unet is not None:
        for dtype in dtypes:
            throughput += unet_throughput(
                variants,
                batch=args.batch,
                size=args.unet,
                dtype=dtype,
                device=device,
                repeats=args.repeats,
                warmup=args.warmup,
            )
        console.print(throughput_markdown(throughput), markup=False)
    if args.out is not None:
        json_path, markdown_path = write_results(rows, args.out, meta, throughput)
        console.print(f"wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
