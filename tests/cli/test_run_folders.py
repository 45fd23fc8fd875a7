"""Nothing is lost: a second run into the folder of a first writes a new version beside it, and a second sweep into
the folder of a first is refused; the first's config, logs, checkpoints and metrics stay byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

SMALL_MODEL = ["model.net.depth=2", "model.net.base_width=8"]


def tiny(scripts, *args: str) -> list[str]:
    """A tiny, quiet training with a small U-Net, and ``args``."""
    return [*scripts.TINY, *SMALL_MODEL, *scripts.QUIET, *args]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones included) and a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_reused_run_folder_gets_a_new_version_and_the_earlier_run_is_intact(scripts, tmp_path):
    folder = tmp_path / "run"
    first = scripts.run(
        "train.py", *scripts.TINY, *SMALL_MODEL, *scripts.QUIET, "seed=0", f"hydra.run.dir={folder}", root=tmp_path
    )
    assert first.returncode == 0, first.stderr[-2000:]
    before = fingerprint(folder)
    assert {"metrics.json", "checkpoints/last.ckpt", "csv/metrics.csv", ".hydra/config.yaml"} <= set(before)

    second = scripts.run(
        "train.py", *scripts.TINY, *SMALL_MODEL, *scripts.QUIET, "seed=1", f"hydra.run.dir={folder}", root=tmp_path
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"note: {folder} holds an earlier run, which is kept; this run writes to {folder}_v2" in second.stderr
    assert fingerprint(folder) == before
    assert (tmp_path / "run_v2" / "metrics.json").is_file()
    assert "seed: 1" in (tmp_path / "run_v2" / ".hydra" / "config.yaml").read_text()


def test_a_reused_sweep_folder_is_refused_in_one_line(scripts, tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "metrics.json").write_text("{}")
    before = fingerprint(sweep)
    result = scripts.run(
        "train.py",
        "-m",
        *scripts.TINY,
        *SMALL_MODEL,
        *scripts.QUIET,
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        root=tmp_path,
    )
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: hydra.sweep.dir {sweep} already holds an earlier sweep")
    assert "Traceback" not in result.stderr and fingerprint(sweep) == before
