"""Launchers and sweepers that come with an optional extra: when one is chosen but not installed, say which
``pip install`` adds it, in one line, before Hydra starts.

Hydra itself stops with "Could not find 'hydra/launcher/submitit_slurm'" and a list of the options it did find,
which does not say that a package is missing, let alone which. The choice is on the command line, so the scripts
look there first.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

# (a command-line override starting with this, the module it needs, the package that has it, the extra)
NEEDS = (
    ("hydra/launcher=submitit_", "hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "slurm"),
    ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "slurm"),
    ("hparams_search=optuna", "optuna", "optuna", "search"),
    ("hydra/sweeper=upseg_optuna", "optuna", "optuna", "search"),
)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def missing_extra(arguments: Sequence[str]) -> str | None:
    """The one-line message for the first override in ``arguments`` whose package is not installed, else None."""
    for argument in arguments:
        override = argument.lstrip("+~")
        for prefix, module, package, extra in NEEDS:
            if override.startswith(prefix) and not installed(module):
                return (
                    f'{override} needs {package}, which is not installed; install it with: pip install -e ".[{extra}]"'
                )
    return None


def check_extras(arguments: Sequence[str]) -> None:
    """Exit with status 2 and the message of :func:`missing_extra` when a chosen plugin is not installed."""
    message = missing_extra(arguments)
    if message is not None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)
