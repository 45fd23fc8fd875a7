"""The peer benchmark (upseg.peer): the smp loop keeps to its wall-clock budget, is scored by upseg's per-image
counts on upseg's test images, cells are resumable, and the table pairs recipes on the same images."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.datasets import FOLDER_CLASSES, write_folder
from upseg.analysis.bootstrap import pooled_miou
from upseg.errors import UpsegError
from upseg.metrics import COUNTS
from upseg.peer import cells
from upseg.peer.cells import PEER, Cell, peer_cell, run_benchmark
from upseg.peer.loop import PeerRecipe, predict_whole, train_peer
from upseg.peer.table import write_table

pytest.importorskip("segmentation_models_pytorch")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class TickingClock:
    """Advances one second every time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_the_loop_stops_when_its_budget_is_spent():
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), rng.integers(0, 2, (40, 56))) for _ in range(4)]
    model, loop = train_peer(pairs, 2, 255, seconds=4, seed=0, recipe=PeerRecipe(batch=2), clock=TickingClock())
    # The clock is read at the start, before each epoch and after each step: 4 "seconds" allow 2 steps.
    assert loop["steps"] == 2 and loop["crop"] == 32  # the smallest image side, to a multiple of 32
    images = torch.randn(1, 3, 40, 56)
    predictions = predict_whole(model.eval(), images)
    padded = torch.nn.functional.pad(images, (0, 8, 0, 24))
    with torch.no_grad():
        torch.testing.assert_close(predictions, model(padded)[..., :40, :56].argmax(1))


def test_a_peer_cell_trains_on_the_planned_split_and_is_scored_on_upsegs_test_images(tmp_path):
    folder = write_folder(tmp_path / "data", {"train": 6, "test": 2})
    overrides = ["data=folder", f"data.root={folder}", f"data.num_classes={FOLDER_CLASSES}"]
    overrides += ["data.test.images=test/images", "data.test.masks=test/masks"]
    spec = {"overrides": overrides, "seed": 0, "seconds": 1, "out": str(tmp_path / "cell"), "peer": {"batch": 2}}
    loop = peer_cell(CONFIGS, spec)
    assert loop["train_images"] == 5  # the plan validates on 1 of the 6: the peer trains on upseg's 5
    with open(tmp_path / "cell" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == ["img_006.png", "img_007.png"]
    for row in rows:  # every test pixel but the ignored top row is counted once in the union of its classes
        unions = sum(int(row[f"union/class_{c}"]) for c in range(FOLDER_CLASSES))
        intersections = sum(int(row[f"intersection/class_{c}"]) for c in range(FOLDER_CLASSES))
        assert intersections <= unions and unions >= {"img_006.png": 39 * 56, "img_007.png": 47 * 36}[row["name"]]


def write_counts(path: Path, intersection: np.ndarray, union: np.ndarray, index: list[int]) -> None:
    classes = intersection.shape[1]
    header = ["index", "name"] + [f"{name}/c{c}" for name in COUNTS for c in range(classes)]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row, image in enumerate(index):
            blocks = [intersection[row], union[row], intersection[row], union[row]]
            writer.writerow([image, f"{image}.png", *np.concatenate(blocks).tolist()])


def write_cell(out: Path, cell: Cell, intersection: np.ndarray, union: np.ndarray, index: list[int]) -> None:
    folder = cell.folder(out)
    folder.mkdir(parents=True)
    write_counts(folder / "per_image.csv", intersection, union, index)
    (folder / "result.json").write_text(json.dumps({"recipe": cell.recipe}))


def test_the_table_compares_recipes_with_the_peer_on_the_same_images(tmp_path):
    rng = np.random.default_rng(1)
    index = list(range(6))
    runs = {}
    for recipe, bonus in ((PEER, 0), ("transpose", 30)):
        for seed in (0, 1):
            union = rng.integers(100, 200, size=(6, 3))
            intersection = np.minimum(union, rng.integers(20, 80, size=(6, 3)) + bonus)
            write_cell(tmp_path, Cell("shapes", recipe, seed), intersection, union, index)
            runs[recipe, seed] = pooled_miou(intersection.sum(0), union.sum(0))
    write_table(tmp_path, ["shapes"], [PEER, "transpose"], [0, 1], samples=200)
    with open(tmp_path / "table.csv") as f:
        rows = {row["recipe"]: row for row in csv.DictReader(f)}
    for recipe in (PEER, "transpose"):
        scores = [runs[recipe, 0], runs[recipe, 1]]
        assert float(rows[recipe]["mean"]) == pytest.approx(np.mean(scores))
        assert float(rows[recipe]["std"]) == pytest.approx(np.std(scores, ddof=1))
    difference = np.mean([runs["transpose", s] for s in (0, 1)]) - np.mean([runs[PEER, s] for s in (0, 1)])
    assert float(rows["transpose"]["minus_peer"]) == pytest.approx(difference)
    low, high = float(rows["transpose"]["minus_peer_low"]), float(rows["transpose"]["minus_peer_high"])
    assert low <= difference <= high and (rows["transpose"]["beyond_noise"] == "True") == (low > 0 or high < 0)
    assert (
        "beyond noise" in (tmp_path / "table.md").read_text() or "within noise" in (tmp_path / "table.md").read_text()
    )
    # Another recipe tested on other images cannot be paired.
    write_cell(
        tmp_path, Cell("shapes", "bilinear", 0), np.ones((6, 3), int), np.ones((6, 3), int) * 2, [0, 1, 2, 3, 4, 7]
    )
    with pytest.raises(UpsegError, match="bilinear was tested on other images"):
        write_table(tmp_path, ["shapes"], [PEER, "transpose", "bilinear"], [0, 1], samples=50)


def test_finished_cells_are_skipped(tmp_path):
    for seed in (0, 1):
        write_cell(tmp_path, Cell("shapes", PEER, seed), np.ones((2, 2), int), np.ones((2, 2), int), [0, 1])
    said = []
    repo = Path(__file__).resolve().parents[2]
    failed = run_benchmark(repo, tmp_path, {"shapes": ["data=shapes"]}, [PEER], [0, 1], 1, 1, report=said.append)
    assert failed == [] and len(said) == 2 and all(line.endswith("done before, skipped") for line in said)


def test_a_failed_attempt_is_kept_and_the_finished_one_is_recorded_relative_to_the_benchmark(tmp_path, monkeypatch):
    exit_codes = iter([1, 0])  # the cell's first process fails, its second finishes

    def cell_process(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        attempt = Path(json.loads(command[-1])["out"])
        attempt.mkdir(parents=True)
        code = next(exit_codes)
        if code == 0:
            write_counts(attempt / "per_image.csv", np.ones((2, 2), int), np.full((2, 2), 2), [0, 1])
            (attempt / "loop.json").write_text(json.dumps({"steps": 3, "train_seconds": 1.5}))
        return subprocess.CompletedProcess(command, code)

    monkeypatch.setattr(cells.subprocess, "run", cell_process)
    repo, out, cell = Path(__file__).resolve().parents[2], tmp_path / "benchmark", Cell("shapes", PEER, 0)
    said = []
    assert run_benchmark(repo, out, {"shapes": ["data=shapes"]}, [PEER], [0], 1, 1, report=said.append) == [cell]
    assert "failed: cell" in said[-1] and not cell.done(out)
    assert run_benchmark(repo, out, {"shapes": ["data=shapes"]}, [PEER], [0], 1, 1, report=said.append) == []
    result = json.loads((cell.folder(out) / "result.json").read_text())
    assert result["run"] == "shapes/smp_unet/seed_0/attempt_2" and (result["steps"], result["images"]) == (3, 2)
    assert (cell.folder(out) / "attempt_1").is_dir() and (cell.folder(out) / "attempt_1.log").is_file()
