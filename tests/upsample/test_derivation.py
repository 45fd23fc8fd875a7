"""The derivation in shared/seeds: its worked example, and the matrix view of transposed convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from upseg.upsample import conv_transpose2d_direct
from upseg.upsample.ops.direct_conv import rotate_and_swap_kernel, zero_insert_and_pad


def test_worked_example_2x2_by_3x3_gives_4x4():
    """The seed's TensorFlow check: input [[1,2],[4,5]], kernel 1…9, stride 1, no padding."""
    x = torch.tensor([[1.0, 2.0], [4.0, 5.0]]).reshape(1, 1, 2, 2)
    kernel = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    expected = torch.tensor([[1, 4, 7, 6], [8, 26, 38, 27], [23, 62, 74, 48], [28, 67, 76, 45]], dtype=torch.float32)

    # The two intermediate steps of the recipe, as the seed writes them out: pad by k−1 = 2, rotate 180°.
    padded = zero_insert_and_pad(x, (1, 1), (2, 2, 2, 2))
    assert padded[0, 0].tolist() == [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 2, 0, 0],
        [0, 0, 4, 5, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    assert rotate_and_swap_kernel(kernel, groups=1)[0, 0].tolist() == [[9, 8, 7], [6, 5, 4], [3, 2, 1]]

    assert torch.equal(conv_transpose2d_direct(x, kernel)[0, 0], expected)
    assert torch.equal(F.conv_transpose2d(x, kernel)[0, 0], expected)


def test_zero_insertion_places_pixels_stride_apart():
    x = torch.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    dilated = zero_insert_and_pad(x, (2, 3), (0, 0, 0, 0))
    assert dilated.shape == (1, 1, 3, 7)
    assert dilated[0, 0].tolist() == [[1, 0, 0, 2, 0, 0, 3], [0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 5, 0, 0, 6]]
    cropped = zero_insert_and_pad(x, (2, 3), (-1, 0, 0, -1))  # a negative pad crops that side
    assert cropped[0, 0].tolist() == [[0, 0, 2, 0, 0, 3], [0, 0, 0, 0, 0, 0]]


def test_kernel_swap_is_per_group():
    weight = torch.arange(4 * 3 * 1 * 1.0).reshape(4, 3, 1, 1)  # C_in=4, C_out/g=3, groups=2
    swapped = rotate_and_swap_kernel(weight, groups=2)
    assert swapped.shape == (6, 2, 1, 1)
    for g in range(2):
        for o in range(3):
            for i in range(2):
                assert swapped[g * 3 + o, i, 0, 0] == weight[g * 2 + i, o, 0, 0]


def dense_conv_matrix(weight, input_shape, stride, padding, dilation, groups):
    """Matrix C with ``vec(conv2d(x)) = C · vec(x)``, one column per basis image."""
    numel = int(torch.tensor(input_shape).prod())
    basis = torch.eye(numel, dtype=weight.dtype).reshape(numel, *input_shape)
    columns = F.conv2d(basis, weight, None, stride, padding, dilation, groups)
    return columns.reshape(numel, -1).T, columns.shape[1:]


CASES = [  # (C_in, C_out, H, W, k, stride, padding, dilation, groups)
    (1, 1, 4, 4, 3, 1, 0, 1, 1),  # the seed's case: 4×4 ⊛ 3×3 → 2×2
    (2, 3, 5, 6, 3, 2, 1, 1, 1),
    (2, 2, 7, 5, (2, 3), (3, 2), (1, 0), 1, 2),
    (3, 3, 6, 6, 2, 1, 1, 2, 3),
    (4, 2, 9, 8, 4, 4, 2, 1, 2),
]


@pytest.mark.parametrize("c_in,c_out,h,w,kernel,stride,padding,dilation,groups", CASES)
def test_transposed_conv_is_the_transposed_matrix(c_in, c_out, h, w, kernel, stride, padding, dilation, groups):
    torch.manual_seed(0)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    weight = torch.randn(c_out, c_in // groups, *k, dtype=torch.float64)
    matrix, y_shape = dense_conv_matrix(weight, (c_in, h, w), stride, padding, dilation, groups)
    y = torch.randn(1, *y_shape, dtype=torch.float64)
    x = torch.randn(1, c_in, h, w, dtype=torch.float64)

    # output_padding recovers the rows/columns that a strided conv2d dropped, so the transpose maps back to H×W.
    s = stride if isinstance(stride, tuple) else (stride, stride)
    p = padding if isinstance(padding, tuple) else (padding, padding)
    output_padding = tuple(
        size - ((y_shape[1 + a] - 1) * s[a] - 2 * p[a] + dilation * (k[a] - 1) + 1) for a, size in enumerate((h, w))
    )
    transposed = conv_transpose2d_direct(y, weight, None, stride, padding, output_padding, groups, dilation)
    assert transposed.shape == (1, c_in, h, w)
    torch.testing.assert_close(transposed.flatten(), matrix.T @ y.flatten(), rtol=1e-12, atol=1e-12)

    # Adjoint identity ⟨conv2d(x, w), y⟩ = ⟨x, conv_transpose2d(y, w)⟩.
    lhs = (F.conv2d(x, weight, None, stride, padding, dilation, groups) * y).sum()
    rhs = (x * transposed).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)
