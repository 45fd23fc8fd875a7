"""Fitting and testing: the LightningModule (:mod:`.module`), the budget-following schedules (:mod:`.schedules`),
building a run from its config (:mod:`.build`), the callbacks (:mod:`.callbacks`), weights-only checkpoints
(:mod:`.checkpoints`), the tests after training (:mod:`.testing`), the run summary (:mod:`.summary`) and the run
itself (:mod:`.train`, what ``scripts/train.py`` calls; with ``plan=true`` it applies the plan of
:mod:`upseg.planning` first). Imports models, losses, metrics, data, inference (how tests run the network), analysis
(cost), planning, cli (config checks) and errors; never evaluation or prediction."""

from upseg.training.module import SegmentationModule

__all__ = ["SegmentationModule"]
