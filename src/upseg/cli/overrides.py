"""The command line checked against the configs before Hydra runs, so that its mistakes end in one line.

Hydra reports an override of a key that the composed config does not have (``scheduler=cosine scheduler.T_max=0``),
or an option a config group does not have (``decoder=foo``), in several lines of its own and a hint about
``HYDRA_FULL_ERROR``. :func:`check_overrides` composes the config with the command line's overrides first — a sweep
(``-m decoder=a,b``) with the first value of each swept key — and turns such a failure into one line naming the key
and what the config does have (exit status 2). Everything else is left to Hydra.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from upseg.cli.extras import check_extras
from upseg.errors import ConfigError, first_line

MISSING_KEY = re.compile(r"Could not override '([^']+)'")


def concrete(override: Override) -> str | None:
    """``key=value`` for an override, its first value for a sweep; None for a sweep whose values need the config
    loader (``glob``), whose keys are groups that exist anyway."""
    if not override.is_sweep_override():
        return override.input_line
    try:
        first = next(iter(override.sweep_string_iterator()))
    except Exception:  # noqa: BLE001 - Hydra raises several kinds for sweeps it cannot expand alone
        return None
    return f"{override.get_key_element()}={first}"


def _compose(config_dir: Path, config_name: str, overrides: Sequence[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def missing_key_message(key: str, value: str, cfg: DictConfig) -> str:
    """``key`` is absent from ``cfg`` (composed without it): name the node it was meant for and that node's keys."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    group = key.split(".")[0]
    choice = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}")
    where = f"{parent} ({group}={choice})" if parent and choice else (parent or "the config")
    keys = [str(k) for k in node if not str(k).startswith("_") and k != "hydra"] if isinstance(node, DictConfig) else []
    listed = f"; its keys: {', '.join(sorted(keys))}" if keys else ""
    return f"{key} is not a key of {where}{listed}; to add a new key, write +{key}={value}"


def check_overrides(config_dir: Path, config_name: str, arguments: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when the overrides in ``arguments`` cannot be applied to ``config_name``."""
    try:
        args = get_args_parser().parse_args(list(arguments))  # Hydra's own command line: options, then overrides
    except SystemExit:  # not a command line Hydra takes: Hydra says why
        return
    if args.config_dir or args.config_path or args.config_name or args.experimental_rerun:
        return  # another config than the one checked here
    lines = list(args.overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except OverrideParseException as error:
        raise ConfigError(f"the command line cannot be read: {first_line(error)}") from None
    overrides = [line for line in map(concrete, parsed) if line is not None]
    try:
        _compose(config_dir, config_name, overrides)
    except MissingConfigException as error:
        group, _, option = (error.missing_cfg_file or "").rpartition("/")
        if group and error.options:
            raise ConfigError(
                f"{group}={option} is not an option of the {group} group; its options: {', '.join(error.options)}"
            ) from None
        raise ConfigError(first_line(error)) from None
    except ConfigCompositionException as error:
        match = MISSING_KEY.search(str(error))
        if match is None:
            raise ConfigError(first_line(error)) from None
        key = match.group(1)
        value = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=")[0] == key), "…")
        without = [o for o in overrides if o.lstrip("+~").split("=")[0] != key]
        raise ConfigError(missing_key_message(key, value, _compose(config_dir, config_name, without))) from None


def check_command_line(config_dir: Path, config_name: str, arguments: Sequence[str]) -> None:
    """Before Hydra starts: a chosen plugin whose extra is missing (:func:`~upseg.cli.extras.check_extras`), then
    :func:`check_overrides`; either ends the process with one line and exit status 2."""
    check_extras(arguments)
    try:
        check_overrides(config_dir, config_name, arguments)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
