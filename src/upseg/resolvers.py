"""OmegaConf resolvers the configs use; importing :mod:`upseg.train`, :mod:`upseg.data` or :mod:`upseg.module`
registers them (again harmlessly: ``replace=True``).

``${upseg.if:condition,then,else}`` is ``then`` when ``condition`` is true, else ``else`` — e.g. ``data.num_classes``
follows ``data.binary`` in ``configs/data/pets.yaml``.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def choose(condition: bool | str, if_true: Any, if_false: Any) -> Any:
    """``if_true`` or ``if_false``; ``condition`` is a bool, or the text ``true``/``false`` from a command line."""
    if isinstance(condition, str):
        if condition.strip().lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {condition!r}")
        condition = condition.strip().lower() == "true"
    return if_true if condition else if_false


OmegaConf.register_new_resolver("upseg.if", choose, replace=True)
