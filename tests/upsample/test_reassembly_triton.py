"""The Triton kernels of the reassembly under Triton's interpreter, on the CPU: ``reassembly_triton_checks.py`` run in
a fresh process with ``TRITON_INTERPRET=1``, which must be set before triton is first imported (see
:mod:`upseg.upsample.ops.reassembly_triton`) and so cannot be switched on inside this process. Skipped where triton
is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

CHECKS = Path(__file__).with_name("reassembly_triton_checks.py")
ROOT = Path(__file__).parents[2]


def test_the_triton_kernels_pass_their_checks_under_the_interpreter():
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CHECKS)]
    environment = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert " passed" in summary and "skipped" not in summary, summary  # every check ran, none was skipped
