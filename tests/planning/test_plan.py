"""The plan (upseg.planning): the fingerprint against independent counts, the rules on fixture folders of every
kind (objects, thin vessels, membranes), the command line's keys beating the plan's, and the bad inputs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.utils import instantiate
from scipy import ndimage

from tests.helpers.datasets import FOLDER_CLASSES, write_drive, write_folder, write_isbi
from upseg.errors import UpsegError
from upseg.planning import PLAN_FILE, apply_plan, make_plan, plan_run, plan_task
from upseg.planning.fingerprint import boundary, fingerprint
from upseg.planning.plan import budget_seconds, override_value
from upseg.planning.rules import PIXELS_PER_STEP, Context, epoch_length, plan_choices

FOLDER = ("experiment=auto", "data=folder", f"data.num_classes={FOLDER_CLASSES}")


def choices_of(plan) -> dict:
    return {choice.key: choice.value for choice in plan.choices}


def test_the_fingerprint_counts_what_an_independent_reading_counts():
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 3, size=(9, 13)) for _ in range(3)] + [np.zeros((5, 7), dtype=np.int64)]
    masks[0][0, :] = 255  # ignored pixels count nowhere
    samples = [(np.zeros((*m.shape, 3), np.uint8), m) for m in masks]
    prints = fingerprint(samples, num_classes=3, ignore_index=255)
    pixels = sum(np.bincount(m[m != 255].ravel(), minlength=3) for m in masks)
    assert prints.class_pixels == tuple(pixels.tolist())
    assert prints.sizes == tuple(m.shape for m in masks) and prints.images == 4
    # Boundary: a pixel that erosion by the 4-neighbour cross removes from its own value's region.
    cross = ndimage.generate_binary_structure(2, 1)
    for mask in masks:
        reference = np.zeros(mask.shape, bool)
        for value in np.unique(mask):
            region = mask == value
            reference |= region & ~ndimage.binary_erosion(region, cross, border_value=1)
        np.testing.assert_array_equal(boundary(mask), reference)
    background = int(np.argmax(pixels))
    edges = sum(((boundary(m) & (m != 255) & (m != background) & (m < 3)).sum()) for m in masks)
    assert prints.thin_fraction == pytest.approx(edges / (pixels.sum() - pixels[background]))


def test_read_at_most_limit_images_and_counts_are_scaled_to_the_whole():
    samples = [(np.zeros((4, 4, 3), np.uint8), np.eye(4, dtype=np.int64)) for _ in range(10)]
    prints = fingerprint(samples, 2, 255, limit=5)
    assert prints.read == 5 and prints.images == 10 and prints.class_pixels == (120, 40)


def test_thin_and_object_datasets_get_different_crops_scales_and_losses():
    thin = fingerprint([(None, np.pad(np.eye(400, dtype=np.int64), ((0, 0), (0, 100))))] * 20, 2, 255)
    blobs = np.zeros((400, 500), dtype=np.int64)
    blobs[50:350, 100:400] = 1  # one class, 45 % of the pixels: objects
    objects = fingerprint([(None, blobs)] * 20, 2, 255)
    context = Context("cpu", 2**34, 1, carves_validation=True, min_input_size=16)
    thin_plan = {c.key: c.value for c in plan_choices(thin, context, "here")}
    object_plan = {c.key: c.value for c in plan_choices(objects, context, "here")}
    assert thin.thin_fraction == 1.0 and objects.thin_fraction < 0.02
    assert thin_plan["data.crop_size"] ** 2 * thin_plan["data.batch_size"] <= PIXELS_PER_STEP["cpu"]
    assert (thin_plan["data.crop_size"], thin_plan["data.batch_size"]) == (96, 8)
    assert (object_plan["data.crop_size"], object_plan["data.batch_size"]) == (128, 4)
    assert thin_plan["data.scale_range"][1] < object_plan["data.scale_range"][1]
    assert thin_plan["loss.dice_weight"] == 1.0 and object_plan["loss.dice_weight"] == 0.0
    assert thin_plan["data.val_fraction"] == pytest.approx(2 / 20)
    on_gpu = {c.key: c.value for c in plan_choices(thin, Context("cuda", 2**34, 8, False, 16), "here")}
    assert on_gpu["data.crop_size"] > thin_plan["data.crop_size"] and "data.val_fraction" not in on_gpu
    tight = Context("cpu", objects.decoded_bytes * 3, 1, carves_validation=True, min_input_size=16)
    assert {c.key: c.value for c in plan_choices(objects, tight, "here")}["data.cache"] is False


def test_the_plan_of_fixture_folders(train_config, tmp_path):
    folder = write_folder(tmp_path / "folder", {"train": 10})  # no val folders: validation is carved
    drive = write_drive(tmp_path / "drive")
    isbi = write_isbi(tmp_path / "isbi")
    plans = {
        "folder": make_plan(train_config(*FOLDER, f"data.root={folder}", fast=False)),
        "drive": make_plan(train_config("experiment=auto", "data=drive", f"data.root={drive}", fast=False)),
        "isbi": make_plan(train_config("experiment=auto", "data=isbi2012", f"data.root={isbi}", fast=False)),
    }
    chosen = {name: choices_of(plan) for name, plan in plans.items()}
    # Small images of two sizes (40×56, 48×36): trained whole, evaluated one at a time; 1 of 10 validates.
    assert chosen["folder"]["data.crop_size"] is None and chosen["folder"]["data.eval_batch_size"] == 1
    assert chosen["folder"]["data.val_fraction"] == pytest.approx(0.1)
    # DRIVE's 2-px vessels are thin; data=drive carves validation (of its 5 fixture photos); ISBI's split is fixed.
    assert plans["drive"].fingerprint.thin_fraction > 0.9 and chosen["drive"]["loss.dice_weight"] == 1.0
    assert chosen["drive"]["data.val_fraction"] == pytest.approx(1 / 5)
    assert "data.val_fraction" not in chosen["isbi"] and plans["isbi"].fingerprint.images == 20


def test_the_command_lines_keys_beat_the_plan_and_the_plan_is_saved(train_config, tmp_path):
    folder = write_folder(tmp_path / "folder", {"train": 6})
    cfg = train_config(*FOLDER, f"data.root={folder}", "data.batch_size=2", "loss=ce", fast=False)
    planned, plan = plan_run(cfg, tmp_path / "run")
    assert planned.data.batch_size == 2 and plan.status["data.batch_size"] == "yours: 2"
    assert plan.status["loss.dice_weight"] == "not in this config" and "dice_weight" not in planned.loss
    assert planned.data.val_fraction == choices_of(plan)["data.val_fraction"] and cfg.data.val_fraction is None
    saved = yaml.safe_load((tmp_path / "run" / PLAN_FILE).read_text())
    assert saved["fingerprint"]["images"] == 6 and saved["seconds_per_step"] > 0
    assert "data.batch_size=2" not in saved["overrides"] and "data.num_workers=1" in saved["overrides"]
    # The epoch length is set after timing, at the batch that trains (yours): at least 100 of its steps.
    assert planned.data.samples_per_epoch >= 100 * 2 and planned.data.samples_per_epoch % 2 == 0
    # Applied again without the timed step, the plan is the same but for that epoch length.
    again = apply_plan(cfg, make_plan(cfg), explicit={"data.batch_size", "loss"})
    again.data.samples_per_epoch = planned.data.samples_per_epoch
    assert again == planned
    assert instantiate(planned.data).val_fraction == planned.data.val_fraction


def test_a_timed_step_sets_about_five_validations_in_the_budget_and_never_fewer_than_100_steps_an_epoch():
    prints = fingerprint([(None, np.eye(8, dtype=np.int64))] * 20, 2, 255)
    assert epoch_length(prints, 8).value == 100 * 8
    assert epoch_length(prints, 8, budget_seconds=600, seconds_per_step=0.3).value == 400 * 8  # 2000 steps / 5
    assert epoch_length(prints, 8, budget_seconds=600, seconds_per_step=0.35).value == 300 * 8  # in fifties
    assert epoch_length(prints, 8, budget_seconds=600, seconds_per_step=2.0).value == 100 * 8


def test_overrides_and_budgets_are_written_as_hydra_and_lightning_take_them():
    assert [override_value(v) for v in (None, True, [0.8, 1.25], 96)] == ["null", "true", "[0.8,1.25]", "96"]
    assert budget_seconds("00:01:10:05") == 4205 and budget_seconds({"minutes": 2}) == 120
    assert budget_seconds(None) is None


BAD = [
    # (what the folder holds, extra overrides, words the one line must have)
    ({"train": 2}, (), ["has 2 training image(s), too few to split", "data.val.images"]),
    ({"train": 4}, ("model.net.depth=6",), ["smaller than the network's minimum input 64×64", "model.net.depth"]),
    ({"train": 4}, ("trainer.max_time=00:00:00:00",), ["trainer.max_time=00:00:00:00 is shorter than one training"]),
]


@pytest.mark.parametrize("number", range(len(BAD)))
def test_bad_input_is_a_user_error_naming_the_fix(train_config, tmp_path, number):
    counts, extra, words = BAD[number]
    folder = write_folder(tmp_path / "folder", counts)
    cfg = train_config(*FOLDER, f"data.root={folder}", "model.net.base_width=4", *extra, fast=False)
    with pytest.raises(UpsegError) as caught:
        plan_task(cfg)
    for word in words:
        assert word in str(caught.value)


def test_bad_input_ends_the_script_in_one_line_with_status_2(scripts, tmp_path):
    counts, extra, words = BAD[0]
    folder = write_folder(tmp_path / "folder", counts)
    result = scripts.run("plan.py", *FOLDER[1:], f"data.root={folder}", *extra, root=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words[0] in lines[0]


TINY_AUTO = (
    "model.net.depth=2",
    "model.net.base_width=4",
    "trainer.max_epochs=1",
    "data.samples_per_epoch=8",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.rich_progress_bar",
)


def test_experiment_auto_trains_on_the_quick_start_data_and_on_a_folder(scripts, tmp_path):
    """From the command line, as from a clean clone: the plan is applied, saved in the run folder, and trained."""
    folder = write_folder(tmp_path / "folder", {"train": 6})
    runs = {
        "shapes": ("experiment=auto", "data=shapes", "data.num_train=16", "data.num_val=4", "data.num_test=4"),
        "folder": (*FOLDER, f"data.root={folder}"),
    }

    def attempt(name: str):
        run_dir = tmp_path / "runs" / name
        result = scripts.run("train.py", *runs[name], *TINY_AUTO, f"hydra.run.dir={run_dir}", root=tmp_path)
        return run_dir, result

    with ThreadPoolExecutor(len(runs)) as pool:
        results = dict(zip(runs, pool.map(attempt, runs), strict=True))
    for name, (run_dir, result) in results.items():
        assert result.returncode == 0, result.stderr[-3000:]
        plan = yaml.safe_load((run_dir / PLAN_FILE).read_text())
        config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
        assert config["plan"] is True and (run_dir / "metrics.json").is_file()
        statuses = {choice["key"]: choice["status"] for choice in plan["choices"]}
        assert statuses["data.samples_per_epoch"] == "yours: 8" and statuses["data.batch_size"] == "planned"
        assert "one training step" in result.stdout, name
    folder_plan = yaml.safe_load((results["folder"][0] / PLAN_FILE).read_text())
    assert Path(results["folder"][0] / "per_image.csv").read_text().count("\n") == 2  # 1 of 6 validates (= tested)
    assert any(choice["key"] == "data.val_fraction" for choice in folder_plan["choices"])
