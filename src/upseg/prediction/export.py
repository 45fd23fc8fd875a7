"""Export a trained network to ``torch.export`` (``.pt2``) or ONNX (``.onnx``) — what ``scripts/export.py`` runs.

What is exported is the network alone (``module.net``, eval mode): ``N×C×H×W`` float32 images, normalised as the
checkpoint's data spec says ((x/255 − mean)/std), → ``N×K×H×W`` logits. Beside it, ``model.json`` keeps what a
consumer needs: the input rule, normalisation, evaluation size, image conversion, class names, palette and
``ignore_index``, and the differences found by the check below.

**Input sizes.** With ``dynamic=false`` the program takes one image of the one size ``input_size``. With
``dynamic=true`` it takes any batch and is first exported for any ``H, W > size_multiple`` (the network pads inside;
:meth:`SegmentationNetwork.pad_input` keeps the padded size symbolic); where a decoder's layers guard on the padded
size in ways torch's symbolic shapes cannot prove for every size (the export raises a constraint violation), it is
exported for ``H, W`` multiples of ``size_multiple`` from ``2·size_multiple`` instead, and the caller pads (zeros
after normalisation, bottom and right) and crops, as the network itself does. (Those guards hold for every size — ``q
mod 2q ≠ 0`` for ``q = ⌈H/m⌉`` — but turning them into run-time assertions,
``prefer_deferred_runtime_asserts_over_guards``, is not safe here: ONNX drops the assertions.) ONNX conversion of a
program whose convolution padding is computed from the input size (ONNX ``Conv`` takes its ``pads`` as constants)
fails; then ONNX gets the fixed ``input_size``. Each fallback is said in one line and kept in ``model.json``; the
README's decoder table lists what each decoder gets (checked by ``tests/prediction/test_export.py``).

**Check.** The saved file is loaded back — ``torch.export.load``, or an ONNX Runtime session where ``onnxruntime`` is
installed (``pip install -e ".[export]"``) — and run on the example and on a second size its rule allows; the largest
absolute difference from eager PyTorch per size is printed and kept.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.fx.experimental.symbolic_shapes import ConstraintViolationError

from upseg.cli.validation import check_config
from upseg.errors import ConfigError, UpsegError, first_line
from upseg.models import SegmentationNetwork
from upseg.prediction.predictor import check_channels
from upseg.training.checkpoints import module_from_checkpoint

log = logging.getLogger(__name__)
FORMATS = {"torch_export": ".pt2", "onnx": ".onnx"}
EXPORT_EXTRA = 'pip install -e ".[export]"'


@dataclass(frozen=True)
class SizeRule:
    """Which ``H×W`` an exported program takes: ``any`` (from ``minimum``), ``multiple`` (of ``multiple``, from
    ``minimum``) or ``fixed`` (``size`` only); ``reason`` says why it is not ``any`` (empty when it is)."""

    kind: str
    minimum: int = 1
    multiple: int = 1
    size: tuple[int, int] | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.kind == "any":
            return f"any H, W >= {self.minimum}"
        if self.kind == "multiple":
            return f"H, W multiples of {self.multiple}, from {self.minimum}"
        return f"fixed {self.size[0]}x{self.size[1]}"  # type: ignore[index]

    def check_sizes(self, example: tuple[int, int]) -> list[tuple[int, int]]:
        """The example's size and, unless fixed, a second size the rule allows (not a multiple, for ``any``)."""
        height, width = example
        if self.kind == "any":
            return [example, (height + self.multiple // 2 + 1, width + self.multiple + 3)]
        if self.kind == "multiple":
            return [example, (height + self.multiple, width + 2 * self.multiple)]
        return [example]


def example_size(requested: tuple[int, int], multiple: int, dynamic: bool) -> tuple[int, int]:
    """The example input's size: ``requested`` for a fixed export; for a dynamic one rounded up to a multiple of the
    network's ``multiple``, at least twice it (what both dynamic rules accept)."""
    if not dynamic:
        return requested
    return tuple(max(2 * multiple, -(-side // multiple) * multiple) for side in requested)  # type: ignore[return-value]


def _dims(rule: str, multiple: int) -> tuple[dict[int, Any], ...]:
    """Dynamic batch, height and width: from ``multiple + 1`` (``any``; 1 would make the deepest feature a single
    pixel, a size torch.export specialises) or ``multiple·k``, ``k ≥ 2`` (``multiple``)."""
    Dim = torch.export.Dim
    batch = Dim("batch", min=1)
    if rule == "any":
        return ({0: batch, 2: Dim("height", min=multiple + 1), 3: Dim("width", min=multiple + 1)},)
    return ({0: batch, 2: multiple * Dim("height_blocks", min=2), 3: multiple * Dim("width_blocks", min=2)},)


def export_program(
    net: SegmentationNetwork, example: Tensor, dynamic: bool
) -> tuple[torch.export.ExportedProgram, SizeRule]:
    """``torch.export`` of ``net`` (in eval mode) for ``example``'s shape, with the widest size rule it takes."""
    net = net.eval()
    multiple = net.size_multiple
    size = (example.shape[-2], example.shape[-1])
    if not dynamic:
        return torch.export.export(net, (example,)), SizeRule("fixed", size=size)
    try:
        return torch.export.export(net, (example,), dynamic_shapes=_dims("any", multiple)), SizeRule(
            "any", minimum=multiple + 1, multiple=multiple
        )
    except (ConstraintViolationError, torch._dynamo.exc.UserError) as error:
        guard = re.search(r"satisfy the generated guard (.+?)\.?$", str(error), re.MULTILINE)
        reason = f"for some sizes it would need {guard.group(1)}" if guard else root_cause(error)
    program = torch.export.export(net, (example,), dynamic_shapes=_dims("multiple", multiple))
    return program, SizeRule("multiple", minimum=2 * multiple, multiple=multiple, reason=reason)


def root_cause(error: BaseException) -> str:
    """The first line of the innermost error behind ``error`` (the exporters wrap theirs several times), without the
    terminal colours the ONNX exporter puts in its messages."""
    while error.__cause__ is not None:
        error = error.__cause__
    return re.sub(r"\x1b\[[0-9;]*m", "", first_line(error))


def onnx_program(program: torch.export.ExportedProgram) -> Any:
    """``torch.onnx.export(program, dynamo=True)``: the ONNX model of an exported program (its sizes kept)."""
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps on stdout
        return torch.onnx.export(program, dynamo=True, verbose=False, input_names=["images"], output_names=["logits"])


def export_onnx(net: SegmentationNetwork, example: Tensor, dynamic: bool) -> tuple[Any, SizeRule]:
    """The ONNX program of ``net`` with the widest size rule that converts (see the module docstring)."""
    program, rule = export_program(net, example, dynamic)
    try:
        return onnx_program(program), rule
    except Exception as error:
        if rule.kind == "fixed":
            raise UpsegError(f"the network does not convert to ONNX ({root_cause(error)})") from None
        reason = f"{rule.describe()} does not convert to ONNX: {root_cause(error)}"
    program, rule = export_program(net, example, dynamic=False)
    return onnx_program(program), SizeRule("fixed", size=rule.size, reason=reason)


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run_saved(path: Path, images: Tensor) -> Tensor:
    """The logits of the saved program at ``path`` (``.pt2`` or ``.onnx``) for ``images``."""
    if path.suffix == ".pt2":
        return torch.export.load(path).module()(images)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    return torch.from_numpy(output)


@dataclass
class ExportReport:
    """What an export wrote and how closely the saved program matches eager PyTorch (max |difference| per size)."""

    path: str
    format: str
    rule: SizeRule
    differences: dict[str, float] = field(default_factory=dict)


def export_network(net: SegmentationNetwork, format: str, path: Path, example: Tensor, dynamic: bool) -> ExportReport:
    """Export ``net`` to ``path`` in ``format`` and check the saved file against eager (see the module docstring)."""
    if format == "torch_export":
        program, rule = export_program(net, example, dynamic)
        torch.export.save(program, path)
    else:
        program, rule = export_onnx(net, example, dynamic)
        program.save(str(path))
    report = ExportReport(str(path), format, rule)
    if format == "onnx" and not onnx_runtime_available():
        log.warning("onnxruntime is not installed, so the ONNX file was not checked: %s", EXPORT_EXTRA)
        return report
    generator = torch.Generator().manual_seed(0)
    for height, width in rule.check_sizes((example.shape[-2], example.shape[-1])):
        images = torch.randn(example.shape[0], example.shape[1], height, width, generator=generator)
        with torch.no_grad():
            expected = net(images)
            difference = (run_saved(path, images) - expected).abs().max().item()
        report.differences[f"{height}x{width}"] = difference
    return report


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path``'s network as ``cfg.format`` into ``cfg.paths.output_dir`` (see the module docstring)."""
    check_config(cfg)
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path is required: python scripts/export.py ckpt_path=<run>/checkpoints/last.ckpt")
    if cfg.format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {cfg.format!r}")
    if cfg.format == "onnx":
        for package in ("onnx", "onnxscript"):
            try:
                __import__(package)
            except ImportError:
                raise ConfigError(f"format=onnx needs the {package} package: {EXPORT_EXTRA}") from None
    size = tuple(cfg.input_size)
    if len(size) != 2 or not all(isinstance(side, int) and side > 0 for side in size):
        raise ConfigError(f"input_size must be [height, width], two positive ints, got {list(size)}")
    module = module_from_checkpoint(cfg.ckpt_path)
    check_channels(module, cfg.ckpt_path)
    net = module.net.eval()
    # A dynamic batch needs an example of two: torch.export specialises a size of 1.
    batch = 2 if cfg.dynamic else 1
    example = torch.randn(batch, net.in_channels, *example_size(size, net.size_multiple, cfg.dynamic))  # type: ignore[arg-type]
    folder = Path(cfg.paths.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model{FORMATS[cfg.format]}"
    try:
        report = export_network(net, cfg.format, path, example, cfg.dynamic)
    except UpsegError:
        raise
    except Exception as error:
        raise UpsegError(
            f"the network of {cfg.ckpt_path} does not export as {cfg.format} ({first_line(error)})"
        ) from None
    if report.rule.reason:
        print(f"note: exported for {report.rule.describe()}, not any size: {report.rule.reason}")
    summary = export_summary(module, report)
    (folder / "model.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    checked = ", ".join(f"{size}: {difference:.2g}" for size, difference in report.differences.items()) or "not checked"
    print(f"{path} ({report.rule.describe()}); max |difference| from eager PyTorch: {checked}")
    return summary


def export_summary(module: nn.Module, report: ExportReport) -> dict[str, Any]:
    """``model.json``: the file, its input rule and layout, the data spec, the label space and the check."""
    hparams = module.hparams
    return {
        "file": Path(report.path).name,
        "format": report.format,
        "network": hparams.net["name"],
        "decoder": hparams.decoder["name"],
        "input": {
            "name": "images",
            "layout": f"N×{module.net.in_channels}×H×W float32, normalised: (x / 255 − mean) / std",
            "sizes": report.rule.describe(),
            "rule": asdict(report.rule),
        },
        "output": {"name": "logits", "layout": f"N×{hparams.num_classes}×H×W float32"},
        **module.data_spec.as_dict(),
        "class_names": list(module.class_names),
        "ignore_index": hparams.ignore_index,
        "max_abs_difference": report.differences,
    }
