"""Config mistakes found before a run starts, each reported as one line naming the key and what it accepts.

PyTorch and Lightning find many mistakes only deep inside a run (an optimizer is built when fitting starts), as a
traceback that names neither the config key nor the values it takes. One mechanism covers every config group:

1. **Types and names.** Every value of a node that Hydra instantiates (``_target_``), and of a node that a registry
   builds (``model.net`` → the network, ``decoder.options`` → the upsampler), is checked against the signature of
   what receives it (``decoder.stages[i].options`` too): the parameter's type annotation — ``int``, ``float``,
   ``bool``, ``str``, ``None``, ``Literal[...]`` choices, unions of these — or, without one, the type of its default.
   A key that the target does not take is reported with the keys it does take.
2. **Values.** :func:`build` instantiates a node as the run does; a partial (the optimizer, the scheduler) is also
   called, up front, with stand-in arguments (a one-parameter model, that model's optimizer). When that raises, the
   node is built again without one key at a time: the key whose removal (so that its default applies) makes the error
   go away is the one named, with the library's own message, what the key takes and its default. When no key is to
   blame, the error is not the config's, and it is raised as it is.

:func:`check_trainer` refuses hardware the machine does not have. A run with a mistake thus stops before it trains,
with :class:`~upseg.errors.ConfigError`, which the scripts print as one line (exit status 2).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from upseg.cli.slurm import check_slurm
from upseg.errors import ConfigError, UpsegError, first_line

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
_MISSING = inspect.Parameter.empty


def plain(value: Any) -> Any:
    """OmegaConf containers → dicts and lists (resolved), so that values pickle, print and compare plainly."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


def _signature_owners(target: Callable[..., Any]) -> tuple[list[Callable[..., Any]], bool]:
    """The callables whose parameters a call of ``target`` accepts — a class's ``__init__`` and, while it passes
    ``**kwargs`` on to a base of the same package, that base's (as the datamodules pass theirs to
    ``SegmentationDataModule``) — and whether it still takes other keywords (``**kwargs`` going elsewhere)."""
    if not isinstance(target, type):
        return [target], any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(target).parameters.values()
        )
    package = target.__module__.split(".")[0]
    owners = []
    for cls in target.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        if cls.__module__.split(".")[0] != package:
            return owners, True  # **kwargs handed to a library base: anything may be accepted there
        owners.append(init)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
            return owners, False
    return owners, True


def _parameters(target: Callable[..., Any]) -> tuple[dict[str, tuple[Any, Any]], bool]:
    """``{name: (annotation, default)}`` of what ``target`` accepts by keyword, and whether it takes any keyword."""
    accepted: dict[str, tuple[Any, Any]] = {}
    owners, open_ended = _signature_owners(target)
    for owner in owners:
        try:
            hints = typing.get_type_hints(owner)
        except Exception:  # an annotation that does not resolve: fall back to the defaults
            hints = {}
        for name, parameter in inspect.signature(owner).parameters.items():
            if name == "self" or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            accepted.setdefault(name, (hints.get(name, _MISSING), parameter.default))
    return accepted, open_ended


def _matches(value: Any, annotation: Any) -> bool | None:
    """Whether a config value can be ``annotation``; ``None`` where the annotation says nothing checkable."""
    if annotation in (_MISSING, Any, typing.Any):
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_matches(value, member) for member in typing.get_args(annotation)]
        return True if any(verdicts) else (None if None in verdicts else False)
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str or annotation in (Path, os.PathLike):
        return isinstance(value, str)
    container = origin or annotation
    if isinstance(container, type) and issubclass(container, Mapping):
        return isinstance(value, dict)
    if container in (list, tuple, typing.Sequence) or (
        isinstance(container, type) and container.__module__ == "collections.abc" and container is not Mapping
    ):
        return isinstance(value, list | tuple)
    if isinstance(annotation, type):
        # A config holds numbers, strings, booleans, lists and dicts: never a tensor, a module or a callback.
        return False if value is None or isinstance(value, bool | int | float | str) else None
    return None


def _describe(annotation: Any) -> str:
    """What ``annotation`` accepts, in words."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        choices = [c for m in members if typing.get_origin(m) is typing.Literal for c in typing.get_args(m)]
        others = [m for m in members if typing.get_origin(m) is not typing.Literal]
        if float in others and int in others:
            others.remove(int)  # "a number" says it
        parts = (["one of " + ", ".join(repr(c) for c in choices)] if choices else []) + [_describe(m) for m in others]
        return " or ".join(part for part in dict.fromkeys(parts) if part)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    names = {type(None): "null", bool: "true or false", int: "an int", float: "a number", str: "a string"}
    if annotation in names:
        return names[annotation]
    if annotation in (Path, os.PathLike):
        return "a path"
    container = origin or annotation
    if isinstance(container, type) and issubclass(container, Mapping):
        return "a mapping"
    if container in (list, tuple):
        return "a list"
    return ""


def _expected(annotation: Any, default: Any) -> Any:
    """The annotation, or the type of the default where there is none (a float default accepts ints)."""
    if annotation is not _MISSING:
        return annotation
    if default is _MISSING or default is None or not isinstance(default, bool | int | float | str):
        return _MISSING
    return float if isinstance(default, float) else type(default)


def _target_name(target: Callable[..., Any]) -> str:
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', target)}".lstrip(".")


def check_values(
    prefix: str, values: Mapping[str, Any], target: Callable[..., Any], skip: frozenset[str] = frozenset()
) -> None:
    """Every ``values[name]`` (config key ``<prefix>.<name>``) against the parameter ``name`` of ``target`` (see the
    module docstring): one :class:`ConfigError` for the first that does not fit."""
    accepted, open_ended = _parameters(target)
    for name, value in values.items():
        if name in HYDRA_KEYS or name in skip:
            continue
        key = f"{prefix}.{name}" if prefix else name
        value = plain(value)
        if name not in accepted:
            if open_ended:
                continue
            options = ", ".join(sorted(n for n in accepted if n not in skip))
            raise ConfigError(f"{key} is not an option of {_target_name(target)}; its options: {options}")
        annotation, default = accepted[name]
        expected = _expected(annotation, default)
        if _matches(value, expected) is False:
            described = _describe(expected) or "another type"
            raise ConfigError(f"{key}={value!r} is not accepted: it must be {described}")


def _user_keys(node: DictConfig) -> list[str]:
    return [name for name in node if name not in HYDRA_KEYS]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Lightning logs and warns about what it sets up ("GPU available: ..."); trial builds should not."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def innermost(error: BaseException) -> BaseException:
    """The error behind Hydra's ``InstantiationException`` wrappers (the library's own, or one of upseg's)."""
    while isinstance(error, InstantiationException) and (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return error


def build(node: DictConfig, key: str, call: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)`` — and, for a partial, its result called with ``call`` — where an error the
    config causes becomes one :class:`ConfigError` naming ``key.<the key to blame>`` (see the module docstring)."""

    def attempt(config: DictConfig, quiet: bool = True) -> Any:
        with _quiet() if quiet else contextlib.nullcontext():
            built = instantiate(config, **kwargs)
            return built(**call) if call is not None else built

    try:
        return attempt(node, quiet=call is not None)  # the real build speaks as usual; stand-in calls do not
    except Exception as error:
        cause = innermost(error)
        if isinstance(cause, UpsegError):
            raise cause from None
        blamed = _blame(node, key, cause, attempt)
        if blamed is None:  # no key's default makes it go away: not a config value's fault, so keep the traceback
            raise
        raise blamed from None


def _blame(
    node: DictConfig, key: str, error: BaseException, attempt: Callable[[DictConfig], Any]
) -> ConfigError | None:
    target = get_method(node._target_) if "_target_" in node else None
    accepted = _parameters(target)[0] if target is not None else {}
    reason = first_line(error)
    resolved = OmegaConf.create(OmegaConf.to_container(node, resolve=True))  # detached copies must not interpolate
    for name in _user_keys(node):
        trial = OmegaConf.masked_copy(resolved, [n for n in resolved if n != name])
        try:
            attempt(trial)
        except Exception:
            continue
        annotation, default = accepted.get(name, (_MISSING, _MISSING))
        hints = [f"it takes {_describe(annotation)}"] if _describe(annotation) else []
        hints += [] if default is _MISSING else [f"default {default!r}"]
        hint = f" ({'; '.join(hints)})" if hints else ""
        return ConfigError(f"{key}.{name}={plain(node[name])!r} is not accepted: {reason.rstrip('.')}{hint}")
    return None


def stand_in_optimizer(node: DictConfig) -> torch.optim.Optimizer:
    """The configured optimizer over one stand-in parameter (checks its arguments as the run would)."""
    return build(node, "optimizer", call={"params": [torch.nn.Parameter(torch.zeros(1))]})


def _registered(cfg: DictConfig) -> Iterator[tuple[str, Mapping[str, Any], Callable[..., Any], frozenset[str]]]:
    """The nodes whose values reach a registered class through its registry rather than through ``_target_``:
    ``(key, values, the class, the keys its builder fills in)``: the network's options (``model.net``), the decoder's
    (``decoder.options``) and those of each ``decoder.stages`` entry given as ``{name, options}``. Stage names and
    the stage count are the network's to check (:meth:`upseg.models.SegmentationNetwork.stage_decoders`)."""
    from upseg.models import NETWORKS
    from upseg.upsample import UPSAMPLERS

    net = OmegaConf.select(cfg, "model.net")
    if isinstance(net, DictConfig) and net.get("name") in NETWORKS:
        values = {name: net[name] for name in net if name != "name"}
        yield "model.net", values, NETWORKS[net.name], frozenset({"num_classes", "decoder"})
    decoder = cfg.get("decoder")
    if not isinstance(decoder, DictConfig):
        return
    # the shared three and guide_channels are the network's to set (the builder and the network say so)
    shared = frozenset({"in_channels", "out_channels", "scale_factor", "guide_channels"})
    if decoder.get("options") and decoder.get("name") in UPSAMPLERS:
        yield "decoder.options", decoder.options, UPSAMPLERS[decoder.name], shared
    stages = decoder.get("stages")
    for index, entry in enumerate(stages if isinstance(stages, ListConfig) else []):
        if isinstance(entry, DictConfig) and entry.get("options") and entry.get("name") in UPSAMPLERS:
            yield f"decoder.stages[{index}].options", entry.options, UPSAMPLERS[entry.name], shared


def check_trainer(trainer_cfg: DictConfig) -> None:
    """Stop at once, in one sentence, when the trainer asks for hardware that is not there."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but this machine has no usable CUDA GPU; "
            "run on the CPU with trainer=cpu (or trainer.accelerator=cpu)"
        )
    if accelerator == "cpu" and trainer_cfg.get("sync_batchnorm"):
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); "
            "add trainer.sync_batchnorm=false to run DDP on the CPU"
        )
    check_slurm(trainer_cfg)


def check_config(cfg: DictConfig) -> None:
    """Check a training or evaluation config before anything is built (see the module docstring)."""
    for key in ("data", "model", "trainer", "optimizer", "scheduler", "loss", "inference"):
        node = cfg.get(key)
        if isinstance(node, DictConfig) and "_target_" in node:
            check_values(key, node, get_method(node._target_))
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            if isinstance(node, DictConfig) and "_target_" in node:
                check_values(f"{group}.{name}", node, get_method(node._target_))
    for key, values, target, filled_in in _registered(cfg):
        check_values(key, values, target, filled_in)
    if "seed" in cfg:
        from lightning.pytorch import seed_everything

        check_values("", {"seed": cfg.seed}, seed_everything)
    if isinstance(cfg.get("optimizer"), DictConfig) and "_target_" in cfg.optimizer:
        optimizer = stand_in_optimizer(cfg.optimizer)
        if isinstance(cfg.get("scheduler"), DictConfig) and "_target_" in cfg.scheduler:
            lengths = {name: 10 for name in ("total_iters", "T_max", "total_steps") if name not in cfg.scheduler}
            accepted = _parameters(get_method(cfg.scheduler._target_))[0]
            call = {"optimizer": optimizer, **{name: n for name, n in lengths.items() if name in accepted}}
            build(cfg.scheduler, "scheduler", call=call)
