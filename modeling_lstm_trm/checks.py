"""Two small checks that loading, training, the Hub helpers and the command lines share."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when the message is empty), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def non_finite(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold NaN or infinity (e.g. `model.state_dict().items()`)."""
    return [name for name, t in named_tensors if t.is_floating_point() and not bool(torch.isfinite(t).all())]
