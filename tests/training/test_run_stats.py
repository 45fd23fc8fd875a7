"""RunStats times training batches without synchronising the GPU at every step, and measures each fit's own peak
memory."""

from __future__ import annotations

import mmap
import time
from types import SimpleNamespace

import pytest
import torch

from upseg.training.callbacks import IntervalTimer, RunStats, peak_rss_mb, reset_peak_rss


class FakeEvent:
    """Stands in for torch.cuda.Event: a record time, and a count of how often the host waits for one."""

    waits = 0
    clock = 0.0

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.time = None

    def record(self) -> None:
        FakeEvent.clock += 0.25
        self.time = FakeEvent.clock

    def synchronize(self) -> None:
        FakeEvent.waits += 1

    def elapsed_time(self, end: FakeEvent) -> float:
        return (end.time - self.time) * 1000  # milliseconds, as CUDA events report


def test_cuda_intervals_are_read_once_not_per_step(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: (_ for _ in ()).throw(AssertionError("synced")))
    timer, cuda = IntervalTimer(), torch.device("cuda", 0)
    for _ in range(10):
        timer.start(cuda)
        timer.stop(cuda)
    assert FakeEvent.waits == 0  # ten steps, and the host never waited
    assert timer.seconds() == 10 * 0.25
    assert FakeEvent.waits == 1
    assert timer.seconds() == 2.5 and FakeEvent.waits == 1  # already resolved


def test_cpu_intervals_use_the_wall_clock():
    timer, cpu = IntervalTimer(), torch.device("cpu")
    for _ in range(3):
        timer.start(cpu)
        time.sleep(0.01)
        timer.stop(cpu)
    timer.stop(cpu)  # a stop without a start counts nothing
    assert 0.03 <= timer.seconds() < 0.5


def test_each_fit_reports_its_own_peak_rss_not_the_process_lifetime_peak():
    # A Hydra sweep runs every job in one process; without a reset every later run would report the peak of the
    # largest run before it.
    if not reset_peak_rss():
        pytest.skip("this system cannot reset the peak resident set size (no writable /proc/self/clear_refs)")
    size = 256 * 2**20
    with mmap.mmap(-1, size) as buffer:  # mapped memory, returned to the system on close whatever the allocator
        buffer.write(b"\1" * size)  # touch every page so it is resident
        with_buffer = peak_rss_mb()
    stats = RunStats()
    stats.on_fit_start(None, SimpleNamespace(device=torch.device("cpu")))
    after_reset = stats.summary(torch.device("cpu"))["peak_memory_mb"]
    assert after_reset < with_buffer - 200, (with_buffer, after_reset)
