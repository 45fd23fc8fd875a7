"""The seconds one training step takes: the network of the run, a batch of the planned size and crop, cross-entropy,
AdamW — one step to warm up, then the mean of ``repeats`` steps, on the run's device. The plan reports how many
steps the time budget buys and refuses a budget shorter than one step."""

from __future__ import annotations

import time

import torch
from torch import nn


def seconds_per_step(
    network: nn.Module, batch: int, size: tuple[int, int], num_classes: int, device: torch.device, repeats: int = 2
) -> float:
    """Mean wall-clock seconds of a forward, backward and optimizer step on ``batch`` images of ``size`` (H, W)."""
    network = network.to(device).train()
    images = torch.randn(batch, 3, *size, device=device)
    masks = torch.randint(0, num_classes, (batch, *size), device=device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(network(images), masks).backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats
