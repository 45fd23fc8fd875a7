"""One intra-op thread for the upsampler tests: their tensors are tiny, and with the cores shared, waking a second
thread for each of thousands of small convolutions costs more than it saves (several times over, measured). And one
seed per test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def seeded():
    """Every test draws the same random inputs whatever ran before it, so its recorded differences repeat."""
    torch.manual_seed(0)
