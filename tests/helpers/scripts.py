"""Running ``scripts/<name>`` in a subprocess as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.configs import REPO


class Scripts:
    """Runs ``scripts/<name>`` in a subprocess as a user would: in ``root``, with ``UPSEG_ROOT=root`` so that default
    run folders land there."""

    QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "~callbacks.rich_progress_bar"]
    # One epoch of the quick start on a handful of 32×32 images: seconds, for tests of the scripts' behaviour.
    TINY = [
        "experiment=quickstart",
        "data.num_train=8",
        "data.num_val=4",
        "data.num_test=4",
        "data.image_size=32",
        "trainer.max_epochs=1",
    ]

    @staticmethod
    def command(script: str, *args: str) -> list[str]:
        return [sys.executable, str(REPO / "scripts" / script), *args]

    @staticmethod
    def env(root: Path) -> dict[str, str]:
        return {**os.environ, "UPSEG_ROOT": str(root)}

    def run(self, script: str, *args: str, root: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run to the end; stdout and stderr captured as text."""
        command = self.command(script, *args)
        return subprocess.run(command, cwd=root, env=self.env(root), capture_output=True, text=True, timeout=timeout)

    def start(self, script: str, *args: str, root: Path = REPO) -> subprocess.Popen:
        """Start and return at once (to signal the process), stdout and stderr piped as text."""
        command = self.command(script, *args)
        pipe = subprocess.PIPE
        return subprocess.Popen(command, cwd=root, env=self.env(root), stdout=pipe, stderr=pipe, text=True)
