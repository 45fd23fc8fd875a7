"""Images to predict: what ``input=`` names (a file, a folder, a glob), how arrays become RGB like files do, and
output names that never collide."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from upseg.data.samples import rgb_array
from upseg.data.unlabeled import image_files, rgb_from_array
from upseg.errors import DataError
from upseg.prediction.outputs import output_names


def test_input_is_a_file_a_folder_or_a_glob(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.jpg", ".hidden.png", "notes.txt", "sub/c.png"):
        (tmp_path / name).write_bytes(b"")
    assert image_files(str(tmp_path / "a.jpg")) == [tmp_path / "a.jpg"]
    # A folder: every file that is not hidden, so that a stray non-image is named when it fails, not passed over.
    assert image_files(str(tmp_path)) == [tmp_path / name for name in ("a.jpg", "b.png", "notes.txt")]
    assert image_files(str(tmp_path / "*.png")) == [tmp_path / "b.png"]
    assert image_files(str(tmp_path / "**" / "*.png")) == [tmp_path / "b.png", tmp_path / "sub" / "c.png"]
    with pytest.raises(DataError, match=r"input .*missing does not exist; give an image file, a folder"):
        image_files(str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"matches no file"):
        image_files(str(tmp_path / "*.tif"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"input folder .*empty holds no files"):
        image_files(str(tmp_path / "empty"))


def test_arrays_become_rgb_as_image_files_do():
    rng = np.random.default_rng(0)
    sixteen = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    assert np.array_equal(rgb_from_array(sixteen), rgb_array(Image.fromarray(sixteen)))  # scaled by 255/65535
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    assert np.array_equal(rgb_from_array(grey), rgb_array(Image.fromarray(grey)))
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    assert np.array_equal(rgb_from_array(rgba), rgb_array(Image.fromarray(rgba)))  # alpha dropped, not composited
    assert np.array_equal(rgb_from_array(rgba[..., :1]), np.repeat(rgba[..., :1], 3, axis=-1))
    assert np.array_equal(rgb_from_array(np.array([[0.0, 1.0, 0.5]]))[0, :, 0], [0, 255, 128])
    assert np.array_equal(rgb_from_array(np.array([[True, False]]))[0, :, 1], [255, 0])
    with pytest.raises(DataError, match=r"^the image has shape 5×7×2"):
        rgb_from_array(rng.integers(0, 256, (5, 7, 2), dtype=np.uint8))
    with pytest.raises(DataError, match=r"values of type int64"):
        rgb_from_array(np.zeros((2, 2), dtype=np.int64))


def test_output_names_tell_inputs_of_the_same_stem_apart(tmp_path):
    files = [tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "b.tif", tmp_path / "x" / "b.tif", tmp_path / "c.png"]
    assert output_names(files) == ["a_jpg", "a_png", "b_tif_2", "b_tif_3", "c"]
