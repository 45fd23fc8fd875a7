"""Evaluating a trained model: a checkpoint tested on a split with its result files and table (:mod:`.evaluate`,
what ``scripts/evaluate.py`` calls) and the pictures of an evaluation (:mod:`.pictures`). Imports training (the
module and its checkpoints), metrics, data, cli (config checks) and errors."""
