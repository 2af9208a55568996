"""The carry of LSTM-TRM: what persists across deep-supervision steps, as a KV cache persists across decoding steps
(transformers keeps its caches apart from the modeling files too), and the checks of what a step reads (the input
ids, the carry itself, and the labels and puzzle identifiers of its puzzles). A Hub-flat file beside
`modeling_lstmtrm.py`, copied with it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

IGNORE_INDEX = -100  # a label that is not scored
CARRY_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # what the recursion returns, under any forward_dtype


def _refuse_integer_mask(rows: torch.Tensor, batch_size: int) -> None:
    """Integer `rows` are row indices; a 0/1 integer mask of the batch's length (repeated values, so not a list of
    distinct rows) would silently reset rows 0 and 1: it must be passed as a bool mask."""
    if (rows.dtype != torch.bool and rows.dim() == 1 and len(rows) == batch_size > 1
            and bool(((rows == 0) | (rows == 1)).all()) and len(rows.unique()) < len(rows)):
        raise ValueError("`rows` looks like a 0/1 mask: pass a bool mask (`rows.bool()`); integers are row indices")


@dataclass
class LSTMTRMCarry:
    """What persists across deep-supervision steps, like a KV cache (`cache` in, `outputs.cache` out).

    h, c: (batch, positions, hidden) recurrent states, detached. steps: supervision steps each row has run.
    halted: rows that finished; the next call restarts them (`refill`) on the batch's new puzzle.
    inputs, labels, puzzle_identifiers: the puzzle each row is working on.
    head_start: supervision steps each row ran without gradients before its first counted one (progressive
    training), so that it has thought `head_start + steps` steps on its puzzle; None: none.
    """

    h: torch.Tensor
    c: torch.Tensor
    steps: torch.Tensor
    halted: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    puzzle_identifiers: torch.Tensor | None = None
    head_start: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.h.shape[0]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.inputs.shape[1]

    def detach(self) -> LSTMTRMCarry:
        return replace(self, h=self.h.detach(), c=self.c.detach())

    def reset(self, rows: torch.Tensor | list[int] | int) -> LSTMTRMCarry:
        """Mark the given rows (a bool mask of length batch, or row indices) halted, in place: the next call restarts
        them from the initial state on that call's puzzle."""
        rows = torch.as_tensor(rows, device=self.halted.device)
        _refuse_integer_mask(rows, self.batch_size)
        if rows.dtype == torch.bool:
            if rows.shape != (self.batch_size,):
                raise ValueError(f"a boolean `rows` mask must have shape ({self.batch_size},), got {tuple(rows.shape)}")
            self.halted = self.halted | rows
        else:
            rows = rows.reshape(-1).long()
            if rows.numel() and (rows.min() < -self.batch_size or rows.max() >= self.batch_size):
                raise ValueError(f"`rows` must index the batch of size {self.batch_size}, got {rows.tolist()}")
            self.halted = self.halted.index_fill(0, rows, True)
        return self

    def refill(self, h_init: torch.Tensor, c_init: torch.Tensor, input_ids: torch.Tensor,
               labels: torch.Tensor | None = None, puzzle_identifiers: torch.Tensor | None = None) -> LSTMTRMCarry:
        """The carry a supervision step starts from: halted rows restart from (h_init, c_init) at step 0 on this
        batch's puzzle (`input_ids`, `labels`, `puzzle_identifiers`); the other rows keep theirs."""
        new = self.halted
        rows, cells = new.view(-1, 1), new.view(-1, 1, 1)
        if labels is not None:
            old = self.labels if self.labels is not None else torch.full_like(labels, IGNORE_INDEX)
            labels = torch.where(rows, labels, old)
        if puzzle_identifiers is None:
            puzzle_identifiers = self.puzzle_identifiers
        elif self.puzzle_identifiers is not None:
            puzzle_identifiers = torch.where(new, puzzle_identifiers, self.puzzle_identifiers)
        return LSTMTRMCarry(
            h=torch.where(cells, h_init, self.h), c=torch.where(cells, c_init, self.c),
            steps=torch.where(new, 0, self.steps), halted=torch.zeros_like(new),
            inputs=torch.where(rows, input_ids, self.inputs), labels=labels, puzzle_identifiers=puzzle_identifiers,
            head_start=None if self.head_start is None else torch.where(new, 0, self.head_start),
        )

    def batch_select_indices(self, indices: torch.Tensor) -> LSTMTRMCarry:
        """Keep only the rows `indices` (in that order), in place, as transformers' caches do: `solve` drops the rows
        that halted, so that the steps after spend nothing on them."""
        for name, value in vars(self).items():
            if value is not None:
                setattr(self, name, value[indices])
        return self

    @property
    def depth(self) -> torch.Tensor:
        """Supervision steps each row has thought on its puzzle, its head start included."""
        return self.steps if self.head_start is None else self.head_start + self.steps

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Plain tensors, for safetensors checkpoints."""
        return {name: value.contiguous() for name, value in vars(self).items() if value is not None}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> LSTMTRMCarry:
        return cls(**tensors)

    def to(self, device) -> LSTMTRMCarry:
        return LSTMTRMCarry(**{name: None if value is None else value.to(device) for name, value in vars(self).items()})


def check_carry(carry, input_ids, config) -> None:
    """A carry from the model of `config` for this batch: its type, batch, width, positions and dtype."""
    batch = input_ids.shape[0]
    if not isinstance(carry, LSTMTRMCarry):
        raise ValueError(f"`cache` must be an LSTMTRMCarry, got {type(carry).__name__}")
    if carry.batch_size != batch:
        raise ValueError(f"`cache` carries batch size {carry.batch_size}, but this call has {batch}")
    if carry.h.shape[-1] != config.hidden_size or carry.h.shape != carry.c.shape:
        raise ValueError(f"`cache` holds states of width {carry.h.shape[-1]}, but this model's hidden_size is "
                         f"{config.hidden_size}: it comes from another model")
    if carry.inputs.shape[1] != input_ids.shape[1]:
        raise ValueError(f"`cache` carries grids of {carry.inputs.shape[1]} cells, but this call "
                         f"has {input_ids.shape[1]}")
    positions = config.puzzle_emb_len + input_ids.shape[1]
    if carry.h.shape[1] != positions:
        raise ValueError(f"`cache` holds {carry.h.shape[1]} positions, but this model reads {positions} "
                         f"({config.puzzle_emb_len} puzzle-embedding positions + {input_ids.shape[1]} cells): it "
                         "comes from another model")
    if carry.h.dtype not in CARRY_DTYPES or carry.c.dtype != carry.h.dtype:
        raise ValueError(f"`cache` holds {carry.h.dtype} / {carry.c.dtype} states; a carry is float32, bfloat16 "
                         "or float16 (as this model returns it)")


def check_model_inputs(config, input_ids, labels=None, puzzle_identifiers=None, carry=None) -> None:
    """Shapes, dtypes and the carry always; the values (which need a device-to-host read) only where the tensors
    live on the CPU, so that a training step on an accelerator never waits for one (there, an id out of range
    fails in the embedding instead). `solve` checks once per call, not once per supervision step."""
    on_cpu = input_ids.device.type == "cpu"
    check_input_ids(input_ids, config, on_cpu)
    if labels is not None:
        check_labels(labels, input_ids, config, on_cpu)
    if puzzle_identifiers is not None:
        check_puzzle_identifiers(puzzle_identifiers, input_ids.shape[0], config, on_cpu)
    if carry is not None:
        check_carry(carry, input_ids, config)


def check_input_ids(input_ids, config, on_cpu: bool) -> None:
    """Token ids of one batch: (batch, seq_len), or (batch, side * side) of any side for the conv mixer; their values
    read only on the CPU."""
    if config.mixer == "conv":  # any square grid
        if input_ids.dim() != 2 or math.isqrt(input_ids.shape[1]) ** 2 != input_ids.shape[1]:
            raise ValueError(f"`input_ids` must be (batch, side * side) for the conv mixer; got shape "
                             f"{tuple(input_ids.shape)}")
    elif input_ids.dim() != 2 or input_ids.shape[1] != config.seq_len:
        raise ValueError(f"`input_ids` must be (batch, seq_len={config.seq_len}); got shape "
                         f"{tuple(input_ids.shape)} (sequence length {input_ids.shape[-1]})")
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise ValueError(f"`input_ids` must be integer token ids, got {input_ids.dtype}")
    if input_ids.shape[0] == 0:
        raise ValueError("`input_ids` is an empty batch (0 puzzles)")
    if on_cpu and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
        raise ValueError(f"`input_ids` must lie in [0, vocab_size={config.vocab_size}); got values in "
                         f"[{int(input_ids.min())}, {int(input_ids.max())}]")


def check_labels(labels, input_ids, config, on_cpu: bool) -> None:
    """The answer's tokens; with `auxiliary_classes`, optionally the auxiliary target's classes after them."""
    classes, (batch, cells) = config.auxiliary_classes, input_ids.shape
    if labels.shape != input_ids.shape and not (classes and labels.shape == (batch, 2 * cells)):
        raise ValueError(f"`labels` must have the shape of `input_ids` {tuple(input_ids.shape)}"
                         f"{' (or twice its length)' * bool(classes)}, got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"`labels` must be integer token ids (or -100), got {labels.dtype}")
    if not on_cpu:
        return
    part = labels[:, :cells]
    if ((part != IGNORE_INDEX) & ((part < 0) | (part >= config.vocab_size))).any():
        raise ValueError(f"`labels` must lie in [0, vocab_size={config.vocab_size}) or be -100")
    part, most = labels[:, cells:], (math.inf if config.auxiliary_front_speed else classes)
    if ((part != IGNORE_INDEX) & ((part < 0) | (part >= most))).any():
        raise ValueError(f"the auxiliary `labels` must lie in [0, auxiliary_classes={classes}) or be -100"
                         if most == classes else "the auxiliary `labels` (class + auxiliary_classes * arrival) "
                         "must be non-negative or -100")


def check_puzzle_identifiers(puzzle_identifiers, batch: int, config, on_cpu: bool) -> None:
    """One identifier per row, each below `config.num_puzzle_identifiers` (values read only on the CPU)."""
    if puzzle_identifiers.shape != (batch,):
        raise ValueError(f"`puzzle_identifiers` must have shape ({batch},), got "
                         f"{tuple(puzzle_identifiers.shape)}")
    count = config.num_puzzle_identifiers
    if on_cpu and (puzzle_identifiers.min() < 0 or puzzle_identifiers.max() >= count):
        raise ValueError(f"`puzzle_identifiers` must lie in [0, num_puzzle_identifiers={count}); got values in "
                         f"[{int(puzzle_identifiers.min())}, {int(puzzle_identifiers.max())}]")


__all__ = ["CARRY_DTYPES", "IGNORE_INDEX", "LSTMTRMCarry", "check_carry", "check_input_ids", "check_labels",
           "check_model_inputs", "check_puzzle_identifiers"]
