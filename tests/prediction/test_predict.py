"""From a checkpoint to masks on new images: ``predict.py`` on a folder of the quick start's test images writes masks
whose mIoU against their labels is ``evaluate.py``'s in the same inference mode, ``upseg.load(...).predict`` gives
the same arrays, the test after training ran in that mode too; images of any size and mode; bad files, bad settings
and reused output folders as the README says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import upseg
from tests.prediction.conftest import SLIDE_FLIP
from upseg.data import DataSpec
from upseg.errors import DataError
from upseg.evaluation.evaluate import evaluate
from upseg.prediction.predict import predict
from upseg.training.checkpoints import module_from_checkpoint

QUIET = ["trainer=cpu", "trainer.enable_progress_bar=false"]
MODES = {"whole": [], "slide+flip": SLIDE_FLIP}


def miou(predicted: list[np.ndarray], labels: list[np.ndarray], num_classes: int, ignore_index: int = 255) -> float:
    """Pooled IoU per class over the images, averaged over the classes present in prediction or label."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for prediction, label in zip(predicted, labels, strict=True):
        valid = label != ignore_index
        np.add.at(confusion, (label[valid], prediction[valid]), 1)
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return float(np.mean(intersection[union > 0] / union[union > 0]))


def read(folder, count):
    return [np.asarray(Image.open(folder / f"{index}.png")) for index in range(count)]


@pytest.mark.parametrize("mode", MODES)
def test_predicted_masks_score_what_evaluate_scores_and_the_api_gives_the_same(
    trained, compose_configs, tmp_path, mode
):
    count = len(list(trained.images.iterdir()))
    checkpoint = f"ckpt_path={trained.checkpoint}"
    evaluated = evaluate(compose_configs("evaluate", tmp_path / "eval", [checkpoint, *QUIET, *MODES[mode]]))
    out = tmp_path / "masks"
    summary = predict(
        compose_configs(
            "predict",
            tmp_path / "run",
            [checkpoint, f"input={trained.images}", f"output_dir={out}", *QUIET, *MODES[mode]],
        )
    )
    assert summary == {"output_dir": str(out), "files": count, "written": count, "failed": 0}
    masks = read(out, count)
    assert abs(miou(masks, read(trained.labels, count), 4) - evaluated["test/mIoU"]) <= 1e-4
    if mode == "slide+flip":  # the test after training ran in this mode: evaluate.py reproduces its score
        assert trained.summary["inference"] == evaluated["inference"] == "slide 16x16 every 8x8 (uniform) + flip"
        assert abs(trained.summary["test/mIoU"] - evaluated["test/mIoU"]) <= 1e-4
    settings = dict(mode="slide", crop=16, stride=8, flip=True) if mode != "whole" else {}
    model = upseg.load(trained.checkpoint, **settings)
    for index, mask in enumerate(masks):
        assert np.array_equal(model.predict(trained.images / f"{index}.png"), mask)
    assert Image.open(out / "0.png").mode == "P"  # class indices, shown in the palette
    assert np.array_equal(np.asarray(Image.open(out / "0.png").getpalette()[:12]).reshape(4, 3), model.palette)


def test_images_of_any_size_and_mode_give_masks_at_their_own_size(trained, tmp_path):
    model = upseg.load(trained.checkpoint)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    files = {
        "photo.jpg": Image.fromarray(rgb),
        "grey.png": Image.fromarray(rgb[..., 0]),
        "alpha.png": Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (37, 53), dtype=np.uint8)])),
        "sixteen.tif": Image.fromarray(rng.integers(0, 65536, (21, 17), dtype=np.uint16)),
        "palette.gif": Image.fromarray(rgb).convert("P"),
    }
    for name, picture in files.items():
        picture.save(tmp_path / name)
        mask = model.predict(tmp_path / name)
        assert mask.shape == picture.size[::-1] and mask.dtype == np.int64 and 0 <= mask.min() <= mask.max() < 4
    # The same image as a file, a PIL image, an H×W×C array, a C×H×W uint8 tensor and a float tensor in [0, 1].
    expected = model.predict(tmp_path / "photo.jpg")
    decoded = np.array(Image.open(tmp_path / "photo.jpg"))
    for given in (Image.open(tmp_path / "photo.jpg"), decoded, torch.from_numpy(decoded).permute(2, 0, 1)):
        assert np.array_equal(model.predict(given), expected)
    assert np.array_equal(model.predict(torch.from_numpy(decoded).permute(2, 0, 1) / 255.0), expected)
    # RGBA drops its alpha; grey is repeated over the channels.
    assert np.array_equal(model.predict(files["alpha.png"]), model.predict(rgb))
    assert np.array_equal(model.predict(rgb[..., 0]), model.predict(np.repeat(rgb[..., :1], 3, axis=-1)))
    probabilities = model.predict_proba(rgb)
    assert probabilities.shape == (4, 37, 53)
    torch.testing.assert_close(torch.from_numpy(probabilities.sum(0)), torch.ones(37, 53))
    assert np.array_equal(probabilities.argmax(0), model.predict(rgb))
    assert [mask.shape for mask in model.predict([rgb, rgb[:9, :11]])] == [(37, 53), (9, 11)]


def test_an_image_of_other_channels_is_one_error_saying_what_the_model_takes(trained):
    model = upseg.load(trained.checkpoint)
    with pytest.raises(DataError, match=r"^the array has shape 8×8×2: the model takes 3-channel RGB images"):
        model.predict(np.zeros((8, 8, 2), dtype=np.uint8))
    with pytest.raises(DataError, match=r"^the tensor has shape 5×8×8"):
        model.predict(torch.zeros(5, 8, 8))


def test_an_evaluation_size_is_undone_so_masks_have_the_image_size(trained):
    module = module_from_checkpoint(trained.checkpoint)
    module.hparams.data_spec = {**module.hparams.data_spec, "eval_size": 24}
    model = upseg.prediction.Predictor(module)
    image = np.random.default_rng(1).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    logits = model.logits(image)
    assert logits.shape == (1, 4, 30, 45)
    resized = model.transform(image=image)["image"]
    assert resized.shape == (3, 16, 24)  # the longer side to 24, as evaluation saw it
    with torch.no_grad():
        expected = torch.nn.functional.interpolate(module(resized[None]), size=(30, 45), mode="bilinear")
    torch.testing.assert_close(logits, expected)


def test_a_checkpoint_from_before_the_data_spec_predicts_with_its_recorded_normalisation(trained, tmp_path, caplog):
    checkpoint = torch.load(trained.checkpoint, weights_only=True)
    recorded = checkpoint["hyper_parameters"].pop("data_spec")
    assert recorded == DataSpec(palette=((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25))).as_dict()
    checkpoint["upseg_run_config"]["data"] |= {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old = upseg.load(tmp_path / "old.ckpt")
    assert "predates the data spec: predicting with mean [0.5, 0.5, 0.5], std [0.25, 0.25, 0.25]" in caplog.text
    assert old.spec == DataSpec(mean=(0.5,) * 3, std=(0.25,) * 3)  # its data config's; rgb, 3 channels, no palette
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    normalised = torch.from_numpy((image / 255.0 - 0.5) / 0.25).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        expected = old.module(normalised).argmax(1)[0].numpy()
    assert np.array_equal(old.predict(image), expected)
    del checkpoint["upseg_run_config"]
    torch.save(checkpoint, tmp_path / "older.ckpt")
    assert upseg.load(tmp_path / "older.ckpt").spec == DataSpec()  # ImageNet statistics, full resolution


def test_bad_files_are_named_and_skipped_and_the_run_ends_with_status_one(
    trained, scripts, compose_configs, tmp_path, capsys
):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.jpg", "a.jpg"):
        (folder / name).write_bytes((trained.images / "0.png").read_bytes()) if name.endswith("png") else Image.open(
            trained.images / "1.png"
        ).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.png").write_bytes((trained.images / "2.png").read_bytes()[:150])
    out = tmp_path / "out"
    args = [
        f"ckpt_path={trained.checkpoint}",
        f"input={folder}",
        f"output_dir={out}",
        "overlay=true",
        "probabilities=true",
    ]
    first = scripts.run("predict.py", *args, *QUIET, f"hydra.run.dir={tmp_path / 'log1'}", root=tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]
    skipped = sorted(line for line in first.stderr.splitlines() if line.startswith("skipped:"))
    assert len(skipped) == 2
    assert str(folder / "cut.png") in skipped[0] and "truncated" in skipped[0]
    assert str(folder / "notes.txt") in skipped[1] and "cannot identify image file" in skipped[1]
    (error,) = [line for line in first.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: 2 of 5 files could not be predicted") and "Traceback" not in first.stderr
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{stem}{suffix}"
        for stem in ("a_jpg", "a_png", "b")
        for suffix in (".png", "_overlay.jpg", "_probabilities.npy")
    )
    assert np.load(out / "b_probabilities.npy").shape == (4, 32, 32)
    # The same folder again: the first run's files are kept and this one writes beside them.
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    second = predict(compose_configs("predict", tmp_path / "log2", [*args, *QUIET]))
    assert second["output_dir"] == str(tmp_path / "out_v2") and second["failed"] == 2
    assert f"this run writes to {tmp_path / 'out_v2'}" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(path.name for path in (tmp_path / "out_v2").iterdir()) == sorted(before)


def test_a_crop_the_network_cannot_take_is_one_line_with_status_two(trained, scripts, tmp_path):
    # The other settings' mistakes are tests/inference's; this one needs the network's size multiple.
    result = scripts.run(
        "predict.py",
        f"ckpt_path={trained.checkpoint}",
        f"input={trained.images}",
        "inference.mode=slide",
        "inference.crop=18",
        f"hydra.run.dir={tmp_path / 'run'}",
        root=tmp_path,
    )
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        "error: inference.crop=18 is not a multiple of 4, the size multiple of this network (it pads its inputs to "
        "multiples of 4); use e.g. 16 or 20"
    )
    assert "Traceback" not in result.stderr


def test_metrics_record_how_the_network_was_run(trained):
    written = json.loads((trained.run / "metrics.json").read_text())
    assert written["inference"] == "slide 16x16 every 8x8 (uniform) + flip"
