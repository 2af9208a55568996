"""The carried-state protocol: what `StatefulTrainer` needs of a model's recurrent state, and nothing more.

A stateful model takes its state as `cache` and returns the next one in `outputs.cache`, as transformers' own models
carry a KV cache (since transformers 5.24; our models also accept the older name `past_key_values`), and names the
state's class in `state_class` (so a checkpoint can be turned back into a state). The state:

- `batch_size`: the number of rows it carries;
- `detach()`: a copy cut from the autograd graph (truncated backpropagation: the next step backpropagates no
  further than here);
- `reset(rows)`: the given rows (a bool mask of length `batch_size`, or row indices) start afresh, in place;
- `to_tensors()` / `from_tensors(tensors)`: a flat dict of tensors and back, for safetensors checkpoints (exact
  resume);
- `to(device)`: the same state on another device.

`NestedLSTMState` (the LSTM's (h, c) across chunks of a stream) and `LSTMTRMCarry` (h, c and the puzzles across
deep-supervision steps) both satisfy it structurally: the model files import nothing from here, so they stay
self-contained for the Hub.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class CarriedState(Protocol):
    @property
    def batch_size(self) -> int: ...

    def detach(self) -> CarriedState: ...

    def reset(self, rows: torch.Tensor | list[int] | int) -> CarriedState: ...

    def to_tensors(self) -> dict[str, torch.Tensor]: ...

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> CarriedState: ...

    def to(self, device) -> CarriedState: ...
