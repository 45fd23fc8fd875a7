"""Export parity: every registered upsampler in every registered network (at its ``tiny_options``) exports through
``torch.export`` — saved as ``.pt2`` and loaded back — and to ONNX (``torch.onnx.export(dynamo=True)``), and the
loaded program and an ONNX Runtime session match eager PyTorch within 1e-4 on two input sizes. Which sizes each
decoder's export takes is what the README's decoder table says ("exports to ONNX"); where a decoder does not export
for every size, the test names the reason the exporter gave. ``scripts/export.py`` writes a checked file and its
``model.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.checkpoints import hostile_checkpoint
from tests.helpers.configs import REPO
from upseg.errors import ConfigError, first_line
from upseg.models import NETWORKS, SegmentationNetwork, build_network
from upseg.prediction.export import SizeRule, example_size, export, export_program, onnx_program
from upseg.training.checkpoints import CheckpointRefused, module_from_checkpoint
from upseg.upsample import UPSAMPLERS

try:
    import onnxruntime
    import onnxscript  # noqa: F401  (torch.onnx.export(dynamo=True) needs it)
except ImportError:
    onnxruntime = None
needs_onnx = pytest.mark.skipif(
    onnxruntime is None, reason='the export extra is not installed: pip install -e ".[export]"'
)

NUM_CLASSES = 4  # DySample's default 4 groups divide FCN's class scores
TOLERANCE = 1e-4
CASES = [(network, decoder) for network in sorted(NETWORKS) for decoder in sorted(UPSAMPLERS)]
KINDS = {"any size": "any", "multiples of the size multiple": "multiple", "fixed size": "fixed"}


def readme_rules() -> dict[str, dict[str | None, tuple[str, str]]]:
    """The README decoder table's "exports to ONNX" column: per decoder, per network (``None``: every other one),
    ``(torch.export kind, ONNX kind)``. A cell is the ONNX sizes, then ``; torch.export: <sizes>`` where torch.export
    takes more, then ``; in <network>: <sizes>`` where one network's export takes other sizes (both exporters)."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("| `decoder=` |"))
    column = [cell.strip() for cell in lines[start].strip("|").split("|")].index("exports to ONNX")
    rules = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        name = re.match(r"\| `(\w+)` \|", line).group(1)
        cell = [cell.strip() for cell in line.strip().strip("|").split("|")][column]
        onnx, *parts = cell.split("; ")
        exported = onnx
        rules[name] = {}
        for part in parts:
            where, _, sizes = part.partition(": ")
            if where == "torch.export":
                exported = sizes
            else:
                network = re.fullmatch(r"in `(\w+)`", where).group(1)
                rules[name][network] = (KINDS[sizes], KINDS[sizes])
        rules[name][None] = (KINDS[exported], KINDS[onnx])
    return rules


def readme_rule(network: str, decoder: str) -> tuple[str, str]:
    rules = readme_rules()[decoder]
    return rules.get(network, rules[None])


def tiny(network: str, decoder: str) -> SegmentationNetwork:
    torch.manual_seed(0)
    return build_network(network, NUM_CLASSES, {"name": decoder}, **NETWORKS[network].tiny_options).eval()


def max_difference(actual: torch.Tensor | np.ndarray, expected: torch.Tensor) -> float:
    actual = torch.as_tensor(actual)
    assert actual.shape == expected.shape
    return (actual - expected).abs().max().item()


def onnx_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})[0]


def test_the_readme_states_the_export_of_every_registered_decoder():
    rules = readme_rules()
    assert set(rules) == set(UPSAMPLERS)
    assert {network for per_network in rules.values() for network in per_network} <= {None, *NETWORKS}


@pytest.mark.slow
@needs_onnx
@pytest.mark.parametrize("network,decoder", CASES)
def test_the_exported_program_and_onnx_runtime_match_eager_on_two_sizes(network, decoder, tmp_path, export_record):
    net = tiny(network, decoder)
    exported_kind, onnx_kind = readme_rule(network, decoder)
    example = torch.randn(2, 3, *example_size((40, 24), net.size_multiple, dynamic=True))
    program, rule = export_program(net, example, dynamic=True)
    assert rule.kind == exported_kind, f"torch.export takes {rule.describe()}, not what the README says: {rule.reason}"
    sizes = rule.check_sizes(tuple(example.shape[-2:]))
    assert len(sizes) == 2 and sizes[0] != sizes[1]
    inputs = [torch.randn(batch, 3, *size) for batch, size in zip((1, 3), sizes, strict=True)]
    with torch.no_grad():
        expected = [net(images) for images in inputs]
    torch.export.save(program, tmp_path / "net.pt2")
    loaded = torch.export.load(tmp_path / "net.pt2").module()
    exported = [max_difference(loaded(images), eager) for images, eager in zip(inputs, expected, strict=True)]

    try:
        onnx_program(program).save(str(tmp_path / "net.onnx"))
        paths = [tmp_path / "net.onnx"] * 2
        converted = rule.kind
    except Exception as error:  # then each size is converted at that fixed size
        assert onnx_kind == "fixed", f"ONNX conversion of {rule.describe()} failed: {first_line(error)}"
        converted, paths = "fixed", []
        for index, images in enumerate(inputs):
            fixed, fixed_rule = export_program(net, images, dynamic=False)
            assert fixed_rule == SizeRule("fixed", size=tuple(images.shape[-2:]))
            onnx_program(fixed).save(str(tmp_path / f"net{index}.onnx"))
            paths.append(tmp_path / f"net{index}.onnx")
    assert converted == onnx_kind, f"ONNX takes {converted} sizes, not what the README says"
    runtime = [max_difference(onnx_logits(path, x), y) for path, x, y in zip(paths, inputs, expected, strict=True)]

    export_record.rows[network, decoder] = {
        "torch.export": f"{rule.describe()}; max |Δ| " + ", ".join(f"{d:.1e}" for d in exported),
        "ONNX Runtime": f"{converted}; max |Δ| " + ", ".join(f"{d:.1e}" for d in runtime),
    }
    assert max(exported) <= TOLERANCE and max(runtime) <= TOLERANCE, export_record.rows[network, decoder]


@needs_onnx
def test_export_script_writes_a_checked_onnx_file_and_what_a_consumer_needs(trained, scripts, tmp_path):
    folder = tmp_path / "export"
    result = scripts.run(
        "export.py",
        f"ckpt_path={trained.checkpoint}",
        "format=onnx",
        "input_size=[40,24]",
        f"hydra.run.dir={folder}",
        root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{folder / 'model.onnx'} (any H, W >= 5); max |difference| from eager PyTorch: 40x24: " in result.stdout
    spec = json.loads((folder / "model.json").read_text())
    assert spec["input"]["rule"]["kind"] == "any" and spec["decoder"] == "transpose"
    assert spec["class_names"] == ["background", "circle", "square", "triangle"] and spec["ignore_index"] == 255
    assert spec["mean"] == [0.485, 0.456, 0.406] and spec["palette"][1] == [230, 25, 75]
    assert max(spec["max_abs_difference"].values()) <= TOLERANCE
    net = module_from_checkpoint(trained.checkpoint).net.eval()
    images = torch.randn(2, 3, 29, 45)
    with torch.no_grad():
        assert max_difference(onnx_logits(folder / "model.onnx", images), net(images)) <= TOLERANCE


def test_a_fixed_size_torch_export_takes_that_size(trained, compose_configs, tmp_path):
    cfg = compose_configs(
        "export",
        tmp_path,
        [f"ckpt_path={trained.checkpoint}", "format=torch_export", "dynamic=false", "input_size=[20,28]"],
    )
    summary = export(cfg)
    assert summary["input"]["sizes"] == "fixed 20x28" and list(summary["max_abs_difference"]) == ["20x28"]
    program = torch.export.load(tmp_path / "model.pt2").module()
    net = module_from_checkpoint(trained.checkpoint).net.eval()
    images = torch.randn(1, 3, 20, 28)
    with torch.no_grad():
        assert max_difference(program(images), net(images)) <= TOLERANCE


def test_export_refuses_a_checkpoint_with_code_and_a_format_it_does_not_know(trained, compose_configs, tmp_path):
    path, marker = hostile_checkpoint(tmp_path)
    with pytest.raises(CheckpointRefused, match="was refused: it contains executable objects"):
        export(compose_configs("export", tmp_path / "a", [f"ckpt_path={path}"]))
    assert not marker.exists()
    with pytest.raises(ConfigError, match="format must be one of torch_export, onnx, got 'tflite'"):
        export(compose_configs("export", tmp_path / "b", [f"ckpt_path={trained.checkpoint}", "format=tflite"]))
