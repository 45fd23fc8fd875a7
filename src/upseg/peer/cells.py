"""The cells of the side-by-side benchmark — dataset × recipe × seed — each run in a fresh process at the same
wall-clock budget on the same cores, each leaving ``<out>/<dataset>/<recipe>/seed_<k>/`` with ``result.json`` and
``per_image.csv`` (the final weights' per-image counts on the test images). A cell with ``result.json`` is finished
and skipped, so an interrupted benchmark resumes where it stopped; an unfinished cell's earlier attempts are kept
(each attempt runs in its own ``attempt_<n>/``).

Recipes: ``smp_unet`` (the peer, :mod:`upseg.peer.loop`) and one per upseg decoder: ``experiment=auto`` (the planned
recipe) with that decoder, ``trainer.max_time`` the budget. Both read the same data config, with the same plan
applied, so they train on the same images and are tested on the same images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from upseg.errors import UpsegError
from upseg.metrics.results import read_per_image, write_per_image
from upseg.peer.loop import PeerRecipe, evaluate_peer, train_peer
from upseg.planning import apply_plan, make_plan
from upseg.planning.plan import duration

PEER = "smp_unet"
UPSEG_RECIPES = ("transpose", "bilinear", "dysample")
RESULT, PER_IMAGE = "result.json", "per_image.csv"
# The datasets' data overrides; {root} is the folder given on the command line.
DATASETS = {
    "shapes": ("data=shapes",),
    "isbi2012": ("data=isbi2012", "data.root={root}"),
    "drive": ("data=drive", "data.root={root}"),
}
QUIET = ("trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "~callbacks.rich_progress_bar")


@dataclass(frozen=True)
class Cell:
    dataset: str
    recipe: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / self.dataset / self.recipe / f"seed_{self.seed}"

    def done(self, out: Path) -> bool:
        return (self.folder(out) / RESULT).is_file()


def data_overrides(dataset: str, roots: dict[str, str]) -> list[str]:
    if dataset not in DATASETS:
        raise UpsegError(f"unknown dataset {dataset!r}; the benchmark knows {', '.join(DATASETS)}")
    if any("{root}" in item for item in DATASETS[dataset]) and dataset not in roots:
        raise UpsegError(f"dataset {dataset} needs its folder: --{dataset} /path/to/{dataset}")
    return [item.format(root=roots.get(dataset, "")) for item in DATASETS[dataset]]


def next_attempt(folder: Path) -> Path:
    """``attempt_<n>`` for the first n not taken: an interrupted attempt's files stay where they are."""
    number = 1
    while (folder / f"attempt_{number}").exists():
        number += 1
    return folder / f"attempt_{number}"


def thread_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def upseg_command(
    repo: Path, cell: Cell, overrides: Sequence[str], seconds: int, run_dir: Path, peer: dict[str, Any]
) -> list[str]:
    return [
        sys.executable,
        str(repo / "scripts" / "train.py"),
        "experiment=auto",
        *overrides,
        f"decoder={cell.recipe}",
        f"seed={cell.seed}",
        f"trainer.max_time={duration(seconds)}",
        f"hydra.run.dir={run_dir}",
        *QUIET,
    ]


def peer_command(
    repo: Path, cell: Cell, overrides: Sequence[str], seconds: int, run_dir: Path, peer: dict[str, Any]
) -> list[str]:
    spec = {"overrides": list(overrides), "seed": cell.seed, "seconds": seconds, "out": str(run_dir), "peer": peer}
    return [sys.executable, str(repo / "scripts" / "benchmark_peer.py"), "cell", json.dumps(spec)]


def finish_cell(cell: Cell, out: Path, run_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """Copy the attempt's per-image counts into the cell and write its ``result.json`` (the cell is then done)."""
    folder = cell.folder(out)
    shutil.copyfile(run_dir / PER_IMAGE, folder / PER_IMAGE)
    counts = read_per_image(folder / PER_IMAGE)
    result = {"dataset": cell.dataset, "recipe": cell.recipe, "seed": cell.seed, "images": len(counts.index), **extra}
    (folder / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_cell(
    repo: Path,
    out: Path,
    cell: Cell,
    overrides: Sequence[str],
    seconds: int,
    threads: int | None,
    peer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one cell in a fresh process; its log is ``attempt_<n>.log`` beside the attempt's folder."""
    folder = cell.folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = next_attempt(folder)
    make = peer_command if cell.recipe == PEER else upseg_command
    command = make(repo, cell, overrides, seconds, run_dir, peer or {})
    with open(run_dir.with_suffix(".log"), "w") as log:
        status = subprocess.run(command, cwd=repo, env=thread_env(threads), stdout=log, stderr=subprocess.STDOUT)
    if status.returncode != 0:
        raise UpsegError(f"cell {cell} failed (exit {status.returncode}); see {run_dir.with_suffix('.log')}")
    if cell.recipe == PEER:
        extra = json.loads((run_dir / "loop.json").read_text())
    else:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        extra = {key: metrics.get(key) for key in ("train_seconds", "epochs", "val/mIoU", "test/mIoU")}
        shutil.copyfile(run_dir / "plan.yaml", folder / "plan.yaml")
    return finish_cell(cell, out, run_dir, {"run": str(run_dir.relative_to(out)), **extra})  # the folder can move


def compose_run_config(config_dir: Path, overrides: Sequence[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def override_keys(overrides: Sequence[str]) -> set[str]:
    return {item.lstrip("+~").split("=", 1)[0] for item in overrides}


def peer_cell(config_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """What ``benchmark_peer.py cell`` runs: the peer loop on the planned training images of the cell's data config,
    then upseg's per-image counts on its test images; writes ``per_image.csv`` and ``loop.json`` in ``spec['out']``."""
    recipe = PeerRecipe(**spec.get("peer", {}))
    overrides = ["experiment=auto", *spec["overrides"], f"seed={spec['seed']}"]
    cfg = compose_run_config(config_dir, overrides)
    cfg = apply_plan(cfg, make_plan(cfg), override_keys(spec["overrides"]))  # the same split as upseg's run
    datamodule = instantiate(cfg.data)
    pairs = [(np.asarray(image), np.asarray(mask, dtype=np.int64)) for image, mask in datamodule.raw_dataset("train")]
    classes, ignore = datamodule.num_classes, datamodule.ignore_index
    model, loop = train_peer(pairs, classes, ignore, spec["seconds"], spec["seed"], recipe)
    datamodule.setup("test")
    datamodule.eval_batch_size = 1
    counts = evaluate_peer(model, datamodule.test_dataloader(), classes, ignore)
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    write_per_image(out / PER_IMAGE, counts, datamodule.class_names, lambda i: datamodule.sample_name("test", i))
    loop |= {"train_images": len(pairs), "peer_recipe": vars(recipe)}
    (out / "loop.json").write_text(json.dumps(loop, indent=2) + "\n")
    return loop


def run_benchmark(
    repo: Path,
    out: Path,
    datasets: dict[str, list[str]],
    recipes: Sequence[str],
    seeds: Sequence[int],
    seconds: int,
    threads: int | None,
    report: Callable[[str], None] = print,
    peer: dict[str, Any] | None = None,
) -> list[Cell]:
    """Run every unfinished cell, seed by seed (so that a partial benchmark has every recipe at its first seeds);
    returns the cells that failed (their logs say why), after trying all the others. ``peer``: fields of
    :class:`~upseg.peer.loop.PeerRecipe` other than its defaults."""
    failed = []
    cells = [Cell(d, r, s) for s in seeds for d in datasets for r in recipes]
    for number, cell in enumerate(cells, 1):
        if cell.done(out):
            report(f"[{number}/{len(cells)}] {cell}: done before, skipped")
            continue
        report(f"[{number}/{len(cells)}] {cell}: running ({seconds} s budget)")
        try:
            result = run_cell(repo, out, cell, datasets[cell.dataset], seconds, threads, peer)
        except UpsegError as error:
            report(f"  failed: {error}")
            failed.append(cell)
            continue
        report(f"  {result.get('train_seconds')} s of training, {result['images']} test images")
    return failed
