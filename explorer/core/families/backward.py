"""A matrix product's backward pass as autograd computes it, for the families that backpropagate by hand.

``torch.mm``'s derivative formulas pick, from the operands' strides, which of two equal products to
compute (``mm_mat1_backward`` and ``mm_mat2_backward`` in PyTorch's FunctionsManual.cpp): an operand
stored column by column gets its gradient computed transposed, so that the gradient has its layout.
The two products hold the same numbers in exact arithmetic but not always in floating point (a
(1, 1) input, a tied autoencoder's decoder in float64). Following the same rule, a hand-written
backward pass gives autograd's gradients bit for bit in every case.
"""

from __future__ import annotations

import torch


def _column_major(t: torch.Tensor) -> bool:
    """Stored column by column, as autograd's test reads the strides (a (1, 1) matrix counts)."""
    return t.stride(0) == 1 and t.stride(1) == t.shape[0]


def mm_input_grad(grad: torch.Tensor, mat1: torch.Tensor, mat2: torch.Tensor) -> torch.Tensor:
    """dloss/dmat1 of ``mat1.mm(mat2)`` (or of ``addmm(bias, mat1, mat2)``), given dloss/doutput ``grad``."""
    if _column_major(mat1):
        return mat2.mm(grad.t()).t()
    return grad.mm(mat2.t())


def mm_weight_grad(grad: torch.Tensor, mat1: torch.Tensor, mat2: torch.Tensor) -> torch.Tensor:
    """dloss/dmat2 of ``mat1.mm(mat2)`` (or of ``addmm(bias, mat1, mat2)``), given dloss/doutput ``grad``."""
    if _column_major(mat2):
        return grad.t().mm(mat1).t()
    return mat1.t().mm(grad)
