"""Evaluation under DDP sees every sample exactly once, so that val and test metrics equal one process's.

Lightning gives every DDP dataloader a ``DistributedSampler``, which pads a split to a multiple of the world size by
repeating its first samples: with 5 test images on 2 processes one image counts twice, and test/mIoU moves (it did,
by 0.001, in our check). Lightning's own fix, ``UnrepeatedDistributedSampler``, it uses only for predictions; it
lets processes run one batch fewer than others, which is safe where no collective runs per batch — testing (the model
is not wrapped in DDP), and validation during fitting (DDP syncs buffers only on the first forward without grad, and
SyncBatchNorm uses its running statistics in eval mode). The metrics are torchmetrics states summed over processes
when computed, so uneven shares add up to the whole split. Lightning keeps a sampler that is already distributed.
"""

from __future__ import annotations

import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler


def eval_sampler(dataset: Dataset) -> DistributedSampler | None:
    """Each process's share of an evaluation split, no sample repeated; None outside DDP (Lightning decides).

    A split smaller than the world size would leave a process without a batch, which DDP does not survive; it keeps
    Lightning's padding sampler instead.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    if len(dataset) < dist.get_world_size():  # type: ignore[arg-type]
        return None
    return UnrepeatedDistributedSampler(dataset, shuffle=False)
