"""Every registered network, with every registered upsampler as its decoder, at its ``tiny_options``: any input
size gives logits of that size, it states its checkerboard period, its input channels and its size multiple (inputs
whose sides are multiples of it need no padding), and ``torch.export`` and ``torch.compile(fullgraph=True)`` give
eager's logits. A new network is covered here by registering it."""

from __future__ import annotations

import pytest
import torch

from upseg.errors import ConfigError
from upseg.models import NETWORKS, SegmentationNetwork, build_network, register_network
from upseg.upsample import UPSAMPLERS

NUM_CLASSES = 4  # FCN upsamples class scores: DySample's default 4 groups divide them
CASES = [(network, decoder) for network in sorted(NETWORKS) for decoder in sorted(UPSAMPLERS)]


def tiny(network: str, decoder: str) -> SegmentationNetwork:
    torch.manual_seed(0)
    return build_network(network, NUM_CLASSES, {"name": decoder}, **NETWORKS[network].tiny_options).eval()


@pytest.mark.parametrize("network,decoder", CASES)
def test_any_input_size_gives_logits_of_that_size(network, decoder):
    net = tiny(network, decoder)
    assert isinstance(net, SegmentationNetwork)
    assert isinstance(net.checkerboard_period, int) and net.checkerboard_period >= 2
    with torch.no_grad():
        for height, width in [(37, 53), (1, 1), (32, 32)]:
            assert net(torch.randn(2, 3, height, width)).shape == (2, NUM_CLASSES, height, width)


@pytest.mark.parametrize("network,decoder", CASES)
def test_sides_that_are_multiples_of_the_size_multiple_need_no_padding(network, decoder, monkeypatch):
    net = tiny(network, decoder)
    multiple = net.size_multiple
    assert isinstance(multiple, int) and multiple >= 1 and net.in_channels == 3
    paddings = []
    pad_input = SegmentationNetwork.pad_input

    def recorded(self, images):
        padded, padding = pad_input(self, images)
        paddings.append(padding)
        return padded, padding

    monkeypatch.setattr(SegmentationNetwork, "pad_input", recorded)
    with torch.no_grad():
        assert net(torch.randn(1, 3, multiple + 1, 2 * multiple - 1)).shape[-2:] == (multiple + 1, 2 * multiple - 1)
        assert paddings == [(-(multiple + 1) % multiple, -(2 * multiple - 1) % multiple)]
        # With padding switched off, sides that are multiples still give logits of their size: the multiple suffices.
        monkeypatch.setattr(SegmentationNetwork, "pad_input", lambda self, images: (images, (0, 0)))
        assert net(torch.randn(1, 3, multiple, 2 * multiple)).shape == (1, NUM_CLASSES, multiple, 2 * multiple)


@pytest.mark.parametrize("network,decoder", CASES)
def test_torch_export_and_compile_give_the_eager_logits(network, decoder):
    net = tiny(network, decoder)
    x = torch.randn(1, 3, 40, 24)
    with torch.no_grad():
        expected = net(x)
        exported = torch.export.export(net, (x,)).module()
        torch.testing.assert_close(exported(x), expected, rtol=1e-4, atol=1e-4)
        torch._dynamo.reset()
        compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x), expected, rtol=1e-4, atol=1e-4)


def test_a_network_is_registered_by_its_class_alone(monkeypatch):
    monkeypatch.setattr("upseg.models.registry.NETWORKS", dict(NETWORKS))
    from upseg.models import registry

    @register_network("one_by_one")
    class OneByOne(SegmentationNetwork):
        def __init__(self, num_classes: int, decoder: dict, width: int = 2) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, num_classes, 1)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.conv(images)

    assert registry.NETWORKS["one_by_one"] is OneByOne
    assert registry.build_network("one_by_one", 3, {"name": "transpose"}, width=4)(torch.zeros(1, 3, 5, 7)).shape == (
        1,
        3,
        5,
        7,
    )
    with pytest.raises(ValueError, match="already registered"):
        register_network("one_by_one")(OneByOne)
    with pytest.raises(TypeError, match="must subclass SegmentationNetwork"):
        register_network("plain_module")(torch.nn.Identity)
    with pytest.raises(ConfigError, match=r"model.net \(one_by_one\): .*depth"):
        registry.build_network("one_by_one", 3, {"name": "transpose"}, depth=3)


def test_an_unknown_network_is_one_error_listing_the_registered_ones():
    with pytest.raises(
        ConfigError, match="model.net.name='segnet' is not a network; valid: " + ", ".join(sorted(NETWORKS))
    ):
        build_network("segnet", 3, {"name": "transpose"})
