"""Making sure a dataset is on disk before it is read.

:func:`ensure_dataset` finds a dataset's files under its root, or has torchvision download it, or stops with a one-line
:class:`~upseg.errors.DataError` that says where the files were expected, where torchvision fetches them from and how
to train offline instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from upseg.data.samples import brief
from upseg.errors import DataError

OFFLINE_ALTERNATIVE = "train offline on generated shapes with experiment=quickstart"


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset is expected: ``required`` paths under ``root`` (set by ``root_key``), described by ``layout``."""

    name: str
    root: Path
    required: tuple[str, ...]
    layout: str
    urls: tuple[str, ...]
    root_key: str = "data.root"

    def missing(self) -> list[str]:
        return [path for path in self.required if not (self.root / path).exists()]

    def url_text(self) -> str:
        return " and ".join(self.urls)


def ensure_dataset(location: DatasetLocation, download: bool, fetch: Callable[[], object]) -> None:
    """Return when ``location`` is complete; else run ``fetch`` (a torchvision download) if ``download`` is set."""
    if not location.missing():
        return
    if download:
        try:
            fetch()
        except Exception as error:
            raise DataError(
                f"downloading {location.name} from {location.url_text()} into {location.root} failed "
                f"({brief(error)}); check the network connection, or put a copy there laid out as {location.layout}, "
                f"or {OFFLINE_ALTERNATIVE}"
            ) from error
        still_missing = location.missing()
        if not still_missing:
            return
        raise DataError(
            f"{location.name} is still incomplete in {location.root} after downloading from {location.url_text()} "
            f"(missing {', '.join(still_missing)}); delete the partial copy and run again, or {OFFLINE_ALTERNATIVE}"
        )
    raise DataError(
        f"{location.name} was not found in {location.root} (expected {location.layout}); "
        f"set data.download=true to have torchvision fetch it from {location.url_text()}, "
        f"point {location.root_key} at an existing copy, or {OFFLINE_ALTERNATIVE}"
    )
