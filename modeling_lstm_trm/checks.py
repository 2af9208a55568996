"""Small checks that loading, training, the Hub helpers and the command lines share."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when the message is empty), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def non_finite(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold NaN or infinity (e.g. `model.state_dict().items()`)."""
    return [name for name, t in named_tensors if t.is_floating_point() and not bool(torch.isfinite(t).all())]


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(name, what: str) -> str:
    """A name read from a file or a flag (a split, a task id) that becomes part of a file name: letters, digits,
    '_', '.', '-', not starting with a dot, so it can never point outside its folder."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{what} {name!r} is not a plain name (letters, digits, '_', '.', '-'): refusing to use it "
                         "in a file name")
    return name
