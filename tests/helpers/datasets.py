"""Tiny datasets written in the exact on-disk formats that torchvision and ``data=folder`` read.

Every dataset mixes images of 40×56 and 48×36 pixels (H×W), so eval batches need padding. A mask is a filled
rectangle of one class on background; its image paints each pixel in its class's colour (plus noise), so that images
stay recognisable after JPEG compression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from upseg.data.palette import label_colormap

SIZES = ((40, 56), (48, 36))

PETS_TRAINVAL = ("Abyssinian_1", "Abyssinian_2", "Bengal_1", "beagle_1", "beagle_2", "boxer_1")
PETS_TEST = ("Bengal_2", "boxer_2")
# VOC ids overlap with SBD's the way the real ones do: some SBD images are in VOC train, some in VOC val; one id is
# in both SBD lists, to see that an image is used once.
VOC_TRAIN = ("2007_000032", "2007_000039", "2008_000008")
VOC_VAL = ("2007_000033", "2008_000009")
SBD_TRAIN = ("2007_000032", "2007_000033", "2008_000100", "2008_000101")
SBD_VAL = ("2008_000009", "2008_000102", "2008_000101")


def size_of(index: int) -> tuple[int, int]:
    return SIZES[index % len(SIZES)]


def class_picture(mask: np.ndarray, colours: np.ndarray, seed: int) -> np.ndarray:
    """``H×W×3`` uint8: each pixel the colour of its class, plus a little noise."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 13, size=(*mask.shape, 3))
    return np.clip(colours[mask.astype(np.int64) % len(colours)].astype(int) + noise, 0, 255).astype(np.uint8)


def rectangle_mask(size: tuple[int, int], inside: int, outside: int) -> np.ndarray:
    height, width = size
    mask = np.full(size, outside, dtype=np.uint8)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = inside
    return mask


def write_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_mask(path: Path, mask: np.ndarray, palette: np.ndarray | None = None) -> None:
    """A greyscale PNG of ``mask``'s values, or a palette-mode one when ``palette`` (N×3 uint8) is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(mask.astype(np.uint8))
    if palette is not None:
        picture.putpalette(palette.astype(np.uint8).flatten().tolist())  # an "L" picture becomes "P", same indices
    picture.save(path)


def pets_trimap(size: tuple[int, int]) -> np.ndarray:
    """Trimap values: 1 pet (a rectangle), 3 its one-pixel border, 2 background."""
    trimap = rectangle_mask(size, 1, 2)
    height, width = size
    trimap[height // 4 - 1, width // 4 - 1 : 3 * width // 4 + 1] = 3
    trimap[3 * height // 4, width // 4 - 1 : 3 * width // 4 + 1] = 3
    trimap[height // 4 - 1 : 3 * height // 4 + 1, width // 4 - 1] = 3
    trimap[height // 4 - 1 : 3 * height // 4 + 1, 3 * width // 4] = 3
    return trimap


def write_pets(root: Path) -> Path:
    """``root/oxford-iiit-pet`` as torchvision's OxfordIIITPet reads it; returns the trimaps folder."""
    base = root / "oxford-iiit-pet"
    colours = np.array([[0, 0, 0], [200, 60, 40], [40, 160, 60], [240, 240, 240]], dtype=np.uint8)
    breeds = sorted({name.rsplit("_", 1)[0] for name in PETS_TRAINVAL + PETS_TEST})
    for split, names in (("trainval", PETS_TRAINVAL), ("test", PETS_TEST)):
        lines = []
        for name in names:
            index = (PETS_TRAINVAL + PETS_TEST).index(name)
            trimap = pets_trimap(size_of(index))
            write_image(base / "images" / f"{name}.jpg", class_picture(trimap, colours, index))
            write_mask(base / "annotations" / "trimaps" / f"{name}.png", trimap)
            breed = name.rsplit("_", 1)[0]
            species = 1 if breed[0].isupper() else 2  # the dataset's convention: cat breeds are capitalised
            lines.append(f"{name} {breeds.index(breed) + 1} {species} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return base / "annotations" / "trimaps"


def voc_label(image_id: str) -> int:
    """The object class of a fixture image: distinct per id, so a mask tells which image it came from."""
    ids = sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))
    return ids.index(image_id) + 1


def voc_mask(image_id: str, size: tuple[int, int]) -> np.ndarray:
    """An object of the id's class with a 255 outline, as in VOC's SegmentationClass PNGs."""
    mask = rectangle_mask(size, voc_label(image_id), 0)
    height, width = size
    mask[height // 4, width // 4 : 3 * width // 4] = 255
    return mask


def write_voc(root: Path) -> Path:
    """``root/VOCdevkit/VOC2012`` as torchvision's VOCSegmentation reads it; returns that folder."""
    base = root / "VOCdevkit" / "VOC2012"
    palette = label_colormap(256)
    for split, ids in (("train", VOC_TRAIN), ("val", VOC_VAL)):
        for index, image_id in enumerate(ids):
            mask = voc_mask(image_id, size_of(index))
            write_image(base / "JPEGImages" / f"{image_id}.jpg", class_picture(mask, palette, index))
            write_mask(base / "SegmentationClass" / f"{image_id}.png", mask, palette)
        split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text("\n".join(ids) + "\n")
    return base


SBD_OWN_LABEL = 20  # SBD's mask of an image that VOC train also has: differs from VOC's, to see which one is used


def write_sbd(sbd_root: Path) -> Path:
    """SBD's ``img/*.jpg``, ``cls/*.mat`` (the GTcls struct) and ``train.txt``/``val.txt``, as torchvision's
    SBDataset reads them."""
    palette = label_colormap(256)
    for split, ids in (("train", SBD_TRAIN), ("val", SBD_VAL)):
        for index, image_id in enumerate(ids):
            label = SBD_OWN_LABEL if image_id in VOC_TRAIN else voc_label(image_id)
            segmentation = rectangle_mask(size_of(index), label, 0)  # SBD has no outlines
            write_image(sbd_root / "img" / f"{image_id}.jpg", class_picture(segmentation, palette, index))
            (sbd_root / "cls").mkdir(parents=True, exist_ok=True)
            categories = np.array([[label]], dtype=np.uint8)
            scipy.io.savemat(
                sbd_root / "cls" / f"{image_id}.mat",
                {"GTcls": {"Segmentation": segmentation, "CategoriesPresent": categories}},
            )
        (sbd_root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return sbd_root


FOLDER_CLASSES = 3


def write_folder(root: Path, counts: dict[str, int], image_suffix: str = ".png", palette: bool = False) -> Path:
    """``root/<split>/images/*`` and ``root/<split>/masks/*.png``, classes 0–2 with a 255 outline."""
    colours = np.array([[30, 30, 200], [200, 30, 30], [30, 200, 30]], dtype=np.uint8)
    offset = 0
    for split, count in counts.items():
        for index in range(count):
            size = size_of(index)
            mask = rectangle_mask(size, 1 + (offset + index) % (FOLDER_CLASSES - 1), 0)
            mask[0, :] = 255
            write_image(
                root / split / "images" / f"img_{offset + index:03d}{image_suffix}", class_picture(mask, colours, index)
            )
            write_mask(
                root / split / "masks" / f"img_{offset + index:03d}.png", mask, label_colormap(256) if palette else None
            )
        offset += count
    return root


# DRIVE and ISBI 2012 in their published formats (see /work/shared/datasets/README.md): RGB TIFF photos, GIF vessel
# masks of 0/255 (one a palette GIF of indices 0/1, as DRIVE's 2nd_manual ones are), GIF field-of-view masks; ISBI's
# greyscale PNG slices with 0 (membrane) / 255 (cell) labels.
DRIVE_TRAIN = (21, 22, 23, 24, 25)
DRIVE_TEST = (1, 2)
DRIVE_PALETTE_GIF = 22  # this training number's manual is a palette GIF of indices 0/1
ISBI_SLICES = 30
ISBI_SIZE = (24, 20)


def field_of_view(size: tuple[int, int]) -> np.ndarray:
    """DRIVE's FOV: 255 inside an ellipse that fills the picture, 0 in the corners."""
    height, width = size
    rows, cols = np.ogrid[:height, :width]
    inside = ((rows - height / 2 + 0.5) / (height / 2)) ** 2 + ((cols - width / 2 + 0.5) / (width / 2)) ** 2 <= 1
    return np.where(inside, 255, 0).astype(np.uint8)


def drive_vessels(size: tuple[int, int], number: int) -> np.ndarray:
    """0/255: a horizontal and a vertical "vessel" two pixels wide, placed by ``number``."""
    height, width = size
    vessels = np.zeros(size, dtype=np.uint8)
    vessels[height // 2 + number % 3 : height // 2 + number % 3 + 2, :] = 255
    vessels[:, width // 3 + number % 4 : width // 3 + number % 4 + 2] = 255
    return vessels


def write_gif(path: Path, values: np.ndarray, palette: bool = False) -> None:
    """A GIF of 0/255 ``values``: greyscale (DRIVE's 1st_manual, mask), or with ``palette`` indices 0/1 on a
    black/white palette (DRIVE's 2nd_manual)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if palette:
        picture = Image.fromarray((values > 0).astype(np.uint8)).convert("P")
        picture.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
        picture.save(path)
    else:
        # Without optimize=False Pillow packs the two grey levels into a 2-colour palette; DRIVE's GIFs read as
        # greyscale 0/255.
        Image.fromarray(values).save(path, optimize=False)


def write_drive(root: Path) -> Path:
    """``root/training/{images,1st_manual,mask}`` and ``root/test/{images,1st_manual,mask}`` as DRIVE ships them."""
    colours = np.array([[150, 60, 20], [60, 20, 10]], dtype=np.uint8)  # a reddish fundus, darker vessels
    for folder, numbers, kind in (("training", DRIVE_TRAIN, "training"), ("test", DRIVE_TEST, "test")):
        for index, number in enumerate(numbers):
            size = size_of(index)
            vessels = drive_vessels(size, number)
            fov = field_of_view(size)
            picture = class_picture((vessels > 0).astype(np.uint8), colours, number)
            picture[fov == 0] = 0  # black outside the FOV, as in the photographs
            path = root / folder / "images" / f"{number:02d}_{kind}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(path, compression="tiff_lzw")
            write_gif(root / folder / "1st_manual" / f"{number:02d}_manual1.gif", vessels, number == DRIVE_PALETTE_GIF)
            write_gif(root / folder / "mask" / f"{number:02d}_{kind}_mask.gif", fov)
    return root


def isbi_membranes(size: tuple[int, int], number: int) -> np.ndarray:
    """0/255 labels: cells (255) separated by one-pixel membranes (0) on a grid shifted by ``number``."""
    labels = np.full(size, 255, dtype=np.uint8)
    labels[number % 5 :: 6, :] = 0
    labels[:, number % 4 :: 7] = 0
    return labels


def write_isbi(root: Path) -> Path:
    """``root/image/<n>.png`` (8-bit greyscale) and ``root/label/<n>.png`` for n = 0 … 29."""
    for number in range(ISBI_SLICES):
        labels = isbi_membranes(ISBI_SIZE, number)
        noise = np.random.default_rng(number).integers(-9, 10, ISBI_SIZE)
        grey = np.clip(np.where(labels == 0, 40, 190) + noise, 0, 255)
        write_image(root / "image" / f"{number}.png", grey.astype(np.uint8))
        write_mask(root / "label" / f"{number}.png", labels)
    return root
