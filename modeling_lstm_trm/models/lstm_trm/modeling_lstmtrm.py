"""LSTM-TRM: a Tiny Recursive Model whose recursion is an LSTM-style cell.

Per deep-supervision step (one `forward` call), with x the embedded puzzle:

    repeat T times (the first T - 1 without gradients):
        repeat n times:  h <- update_h(x, c, h) = net(h + x + c)        # latent reasoning (TRM's z)
        c <- update_c(c, h):  g = net(c + h)                             # candidate answer
                              f, i = sigmoid(W g + b)                    # forget and input gates
                              c = rms_norm(f * c + i * g)                # gated answer state (TRM's y)
    logits = lm_head(c), (q_halt, q_continue) = q_head(mean(c))      # or c's first position (TRM's)

`net` is one trunk (token mixing + SwiGLU channel MLP blocks, post-norm) shared by both updates: the same network
through different gates. `recurrence="trm"` replaces the gated update by TRM's reference c <- net(c + h), so the
two recursions can be compared on equal terms; with TRM's conventions (`convert_trm_original_to_hf.config_from_trm`)
it computes what TRM's own code computes (tests/test_trm_parity.py). The carry (h, c, steps, halted and the rows'
current puzzles) travels between supervision steps as `cache` (its older name `past_key_values` works too), as
transformers carries a KV cache.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_lstm_trm import LSTMTRMConfig

# ----- the carried state's name (a copy of this block stands in each modeling file; tests check they are equal) -----
# transformers >= 5.24 calls a model's carried state `cache`, in `forward` and in its outputs, and maps the older name
# `past_key_values` onto it. Earlier releases know only `past_key_values`: there, this base gives our outputs the same
# mapping, so that those releases' `generate` (which looks the state up under the old name) and older callers find it.
if hasattr(ModelOutput, "past_key_values"):
    CarriedStateOutput = ModelOutput
else:
    class CarriedStateOutput(ModelOutput):
        """A model output whose `cache` also answers to `past_key_values`."""

        @staticmethod
        def _current_name(key):
            return "cache" if key == "past_key_values" else key

        @property
        def past_key_values(self):
            return self.cache

        def __getitem__(self, key):
            return super().__getitem__(self._current_name(key) if isinstance(key, str) else key)

        def __contains__(self, key):
            return super().__contains__(self._current_name(key))

        def get(self, key, default=None):
            return super().get(self._current_name(key), default)


def carried_state_argument(cache, past_key_values):
    """The carried state, passed as `cache` or under its older name `past_key_values` (one of them at most)."""
    if past_key_values is None:
        return cache
    if cache is not None:
        raise ValueError("Pass the carried state as `cache` or as `past_key_values`, not both")
    return past_key_values
# ----- end of the copied block ----------------------------------------------------------------------------------------

IGNORE_INDEX = -100
CARRY_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # what the recursion returns, under any forward_dtype
AUTO_MAP = {"AutoModel": "modeling_lstmtrm.LSTMTRMModel",  # the backbone, as transformers' AutoModel gives
            "AutoModelForPuzzleSolving": "modeling_lstmtrm.LSTMTRMForPuzzleSolving"}  # modeling_lstm_trm.auto


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Parameter-free RMS norm, computed in float32 and returned in the input's dtype."""
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + eps)).to(x.dtype)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """TRM's stablemax cross-entropy per position, in float64; 0 where labels == -100.

    stablemax replaces exp by s(x) = 1 / (1 - x) for x < 0 and x + 1 otherwise, which cannot overflow.
    """
    x = logits.double()
    # clamp: the unused branch must stay finite, or where() turns its infinite gradient at x = 1 into NaN
    s = torch.where(x < 0, 1.0 / (1.0 - x.clamp(max=0.0)), x + 1.0)
    log_probs = torch.log(s / s.sum(-1, keepdim=True))
    valid = labels != IGNORE_INDEX
    picked = log_probs.gather(-1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0.0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")


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
    """

    h: torch.Tensor
    c: torch.Tensor
    steps: torch.Tensor
    halted: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    puzzle_identifiers: torch.Tensor | None = None

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
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Plain tensors, for safetensors checkpoints."""
        return {name: value.contiguous() for name, value in vars(self).items() if value is not None}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> LSTMTRMCarry:
        return cls(**tensors)

    def to(self, device) -> LSTMTRMCarry:
        return LSTMTRMCarry(**{name: None if value is None else value.to(device) for name, value in vars(self).items()})


@dataclass
class LSTMTRMOutput(CarriedStateOutput):
    """One deep-supervision step.

    metrics: `{name: (sum, count)}` tensors, present when labels are known: cell_accuracy, exact_accuracy,
    q_halt_accuracy and steps summed over the rows that halted at this step (count: those rows), lm_loss and
    q_halt_loss over the batch. Sums and counts, as TRM's loss head returns them, so anyone can average them.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    q_halt_logits: torch.FloatTensor | None = None
    q_continue_logits: torch.FloatTensor | None = None
    cache: LSTMTRMCarry | None = None
    metrics: dict[str, torch.Tensor] | None = None


@dataclass
class LSTMTRMModelOutput(CarriedStateOutput):
    """The backbone's output for one supervision step: `last_hidden_state` is the answer state c and
    `latent_state` the latent h, each (batch, puzzle-embedding positions + cells, hidden); `cache` carries both."""

    last_hidden_state: torch.FloatTensor | None = None
    latent_state: torch.FloatTensor | None = None
    cache: LSTMTRMCarry | None = None


@dataclass
class LSTMTRMSolveOutput(ModelOutput):
    """Result of [`LSTMTRMForPuzzleSolving.solve`].

    predictions: each row's answer at the step it halted (its Q head said halt, or `max_steps`).
    halted_at: that step (1-based). final_predictions: the answers after the last step run.
    trace: (steps_run, batch, seq_len) every step's answer, with `return_trace=True`; q_halt_trace likewise.
    With several trajectories these are the ones the Q head picked (highest halting logit: `trajectory` for
    `predictions` and the trace, `final_trajectory` for `final_predictions`), and, with an `answer_checker`,
    `checked_predictions` / `checked_final_predictions` are the picks among trajectories whose answer passes it.
    """

    predictions: torch.LongTensor | None = None
    halted_at: torch.LongTensor | None = None
    final_predictions: torch.LongTensor | None = None
    trace: torch.LongTensor | None = None
    q_halt_trace: torch.FloatTensor | None = None
    trajectory: torch.LongTensor | None = None
    final_trajectory: torch.LongTensor | None = None
    checked_predictions: torch.LongTensor | None = None
    checked_final_predictions: torch.LongTensor | None = None


class LSTMTRMSwiGLU(nn.Module):
    def __init__(self, dim: int, expansion: float, multiple: int):
        super().__init__()
        inner = multiple * -(-round(expansion * dim * 2 / 3) // multiple)  # TRM's width rule
        self.gate_up_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.down_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


def rotary_cos_sin(config: LSTMTRMConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    head_dim = config.hidden_size // config.num_heads
    inv_freq = 1.0 / config.rope_theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(config.total_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class LSTMTRMAttention(nn.Module):
    """Non-causal multi-head self-attention with rotary positions: every cell sees every other."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv_proj(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, width))


class LSTMTRMLocalMixer(nn.Module):
    """A depthwise 3x3 convolution over the square grid: each cell reads its 8 neighbours. Local and position-free,
    so the same weights read grids of any side; the puzzle-embedding positions in front are left unmixed."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__()
        self.prefix = config.puzzle_emb_len
        self.conv = nn.Conv2d(config.hidden_size, config.hidden_size, 3, padding=1, groups=config.hidden_size,
                              bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        side = math.isqrt(length - self.prefix)
        grid = x[:, self.prefix:].transpose(1, 2).reshape(batch, width, side, side)
        mixed = self.conv(grid).reshape(batch, width, side * side).transpose(1, 2)
        return F.pad(mixed, (0, 0, self.prefix, 0))


class LSTMTRMBlock(nn.Module):
    """Token mixing then a channel SwiGLU, each a post-norm residual (as in TRM)."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__()
        self.mixer = config.mixer
        self.eps = config.rms_norm_eps
        self.norm_over_positions = config.mlp_mixer_norm == "positions"
        if config.mixer == "mlp":
            self.token_mixer = LSTMTRMSwiGLU(config.total_len, config.expansion, config.mlp_multiple)
        elif config.mixer == "conv":
            self.token_mixer = LSTMTRMLocalMixer(config)
        else:
            self.token_mixer = LSTMTRMAttention(config)
        self.channel_mlp = LSTMTRMSwiGLU(config.hidden_size, config.expansion, config.mlp_multiple)

    def forward(self, x: torch.Tensor, rotary=None) -> torch.Tensor:
        if self.mixer == "mlp":  # across positions: the residual is formed transposed
            x_t = x.transpose(1, 2)
            residual = x_t + self.token_mixer(x_t)
            x = (rms_norm(residual, self.eps).transpose(1, 2) if self.norm_over_positions  # TRM's norm
                 else rms_norm(residual.transpose(1, 2), self.eps))
        else:
            x = rms_norm(x + (self.token_mixer(x) if self.mixer == "conv" else self.token_mixer(x, rotary)), self.eps)
        return rms_norm(x + self.channel_mlp(x), self.eps)


class LSTMTRMCell(nn.Module):
    """The shared trunk and the two updates of the recursion."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__()
        self.n_cycles = config.n_cycles
        self.eps = config.rms_norm_eps
        self.blocks = nn.ModuleList(LSTMTRMBlock(config) for _ in range(config.num_layers))
        self.gates = nn.Linear(config.hidden_size, 2 * config.hidden_size) if config.recurrence == "lstm" else None

    def net(self, state: torch.Tensor, injection: torch.Tensor, rotary=None) -> torch.Tensor:
        x = state + injection
        for block in self.blocks:
            x = block(x, rotary)
        return x

    def update_h(self, x: torch.Tensor, c: torch.Tensor, h: torch.Tensor, rotary=None) -> torch.Tensor:
        """Latent reasoning: h reads the puzzle and the current answer (c is fixed while h updates)."""
        return self.net(h, x + c, rotary)

    def update_c(self, c: torch.Tensor, h: torch.Tensor, rotary=None) -> torch.Tensor:
        """The answer: a gated blend of the old c and a candidate from the same net (TRM: the candidate alone)."""
        candidate = self.net(c, h, rotary)
        if self.gates is None:
            return candidate
        forget, write = torch.sigmoid(self.gates(candidate)).chunk(2, dim=-1)
        return rms_norm(forget * c + write * candidate, self.eps)

    def forward(self, x, h, c, rotary=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recursion: n updates of h, then one of c."""
        for _ in range(self.n_cycles):
            h = self.update_h(x, c, h, rotary)
        return h, self.update_c(c, h, rotary)


class LSTMTRMPreTrainedModel(PreTrainedModel):
    config_class = LSTMTRMConfig
    config: LSTMTRMConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["LSTMTRMBlock"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        if os.path.isfile(save_directory):  # transformers would log this and return having saved nothing
            raise ValueError(f"save_pretrained: {save_directory} is a file, not a folder")
        if type(self)._auto_class is not None:  # shared as code: name both classes, whichever saves
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        # LeCun-normal linears, unit-scale token embeddings, zero puzzle embeddings, Q head that starts at "continue".
        if isinstance(module, LSTMTRMForPuzzleSolving):
            init.zeros_(module.q_head.weight)
            init.constant_(module.q_head.bias, -5.0)
        elif isinstance(module, LSTMTRMModel):
            init.trunc_normal_(module.h_init, std=1.0)
            init.trunc_normal_(module.c_init, std=1.0)
            if module.puzzle_emb is not None:
                init.zeros_(module.puzzle_emb.weight)
            gates = module.cell.gates
            if gates is not None:
                init.trunc_normal_(gates.weight, std=0.1 * gates.in_features ** -0.5)
                bias = torch.full_like(gates.bias, -self.config.gate_bias_init)
                bias[: self.config.hidden_size] = self.config.gate_bias_init  # forget gate first, then input gate
                init.copy_(gates.bias, bias)
        elif isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=module.in_features ** -0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.trunc_normal_(module.weight, std=module.embedding_dim ** -0.5)
        elif isinstance(module, nn.Conv2d):
            init.trunc_normal_(module.weight, std=module.weight[0].numel() ** -0.5)


class LSTMTRMModel(LSTMTRMPreTrainedModel):
    """The backbone: the embeddings and the recursive cell, no heads. One call is one supervision step's recursion:
    T recursions (the first T - 1 without gradients) from the carry's h and c, or from the initial ones."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.puzzle_emb = (nn.Embedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim,
                                        sparse=config.puzzle_emb_sparse) if config.puzzle_emb_ndim > 0 else None)
        # Rotary positions are relative, and the flattened grid's row/column/box structure is absolute: the attention
        # mixer also gets learned absolute positions by default (the MLP mixer is position-aware by construction).
        self.embed_positions = (nn.Embedding(config.total_len, config.hidden_size)
                                if config.absolute_positions else None)
        self.cell = LSTMTRMCell(config)
        self.h_init = nn.Buffer(torch.zeros(config.hidden_size))
        self.c_init = nn.Buffer(torch.zeros(config.hidden_size))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def autocast(self, device_type: str):
        """The recursion's precision (`config.forward_dtype`)."""
        dtype = getattr(torch, self.config.forward_dtype)
        return torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32)

    def embed(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor | None) -> torch.Tensor:
        x = self.embed_tokens(inputs)
        if self.puzzle_emb is not None:
            if puzzle_identifiers is None:
                puzzle_identifiers = torch.zeros(inputs.shape[0], dtype=torch.long, device=inputs.device)
            puzzle = self.puzzle_emb(puzzle_identifiers)
            puzzle = F.pad(puzzle, (0, self.config.puzzle_emb_len * self.config.hidden_size - puzzle.shape[-1]))
            x = torch.cat([puzzle.view(inputs.shape[0], self.config.puzzle_emb_len, -1), x], dim=1)
        if self.embed_positions is not None:
            x = (x + self.embed_positions.weight) * 0.5**0.5  # keep unit variance
        return x * math.sqrt(self.config.hidden_size)

    def recurse(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, recursions: int | None = None):
        """`recursions` (default T) recursions of the cell on the embedded puzzle x, all but the last without
        gradients; the new (h, c)."""
        rotary = rotary_cos_sin(self.config, x.device) if self.config.mixer == "attention" else None
        recursions = self.config.T_cycles if recursions is None else recursions
        with torch.no_grad():
            for _ in range(recursions - 1):
                h, c = self.cell(x, h, c, rotary)
        return self.cell(x, h, c, rotary)

    def forward(
        self,
        input_ids: torch.LongTensor,
        puzzle_identifiers: torch.LongTensor | None = None,
        cache: LSTMTRMCarry | None = None,
        return_dict: bool | None = None,
        past_key_values: LSTMTRMCarry | None = None,
        **kwargs,
    ) -> LSTMTRMModelOutput | tuple:
        """One supervision step's recursion on `input_ids`, from the carry's (h, c) where one is given (its steps
        and halting are the puzzle-solving head's business and pass through unchanged)."""
        if "labels" in kwargs:
            raise TypeError("LSTMTRMModel is the backbone and takes no `labels`: LSTMTRMForPuzzleSolving (the heads "
                            "and the loss) does")
        return_dict = self.config.return_dict if return_dict is None else return_dict
        carry = carried_state_argument(cache, past_key_values)
        check_inputs(self.config, input_ids, None, puzzle_identifiers, carry)
        if carry is None:
            carry = initial_carry(self, input_ids.long(), None, puzzle_identifiers)
        with self.autocast(input_ids.device.type):
            h, c = self.recurse(self.embed(input_ids.long(), puzzle_identifiers), carry.h, carry.c)
        out = LSTMTRMModelOutput(last_hidden_state=c, latent_state=h,
                                 cache=replace(carry, h=h.detach(), c=c.detach()))
        return out if return_dict else out.to_tuple()


def initial_carry(backbone: LSTMTRMModel, input_ids, labels=None, puzzle_identifiers=None) -> LSTMTRMCarry:
    """A carry at the initial (h, c) in which every row has halted, so the first step takes all of its puzzles
    from the batch."""
    batch, device = input_ids.shape[0], input_ids.device
    shape = (batch, backbone.config.puzzle_emb_len + input_ids.shape[1], backbone.config.hidden_size)
    return LSTMTRMCarry(h=backbone.h_init.expand(shape), c=backbone.c_init.expand(shape),
                        steps=torch.zeros(batch, dtype=torch.long, device=device),
                        halted=torch.ones(batch, dtype=torch.bool, device=device),
                        inputs=input_ids, labels=labels, puzzle_identifiers=puzzle_identifiers)


def check_inputs(config: LSTMTRMConfig, input_ids, labels, puzzle_identifiers, carry) -> None:
    """Shapes, dtypes and the carry always; the values (which need a device-to-host read) only where the tensors
    live on the CPU, so that a training step on an accelerator never waits for one (there, an id out of range
    fails in the embedding instead). `solve` checks once per call, not once per supervision step."""
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
    on_cpu = input_ids.device.type == "cpu"
    if on_cpu and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
        raise ValueError(f"`input_ids` must lie in [0, vocab_size={config.vocab_size}); got values in "
                         f"[{int(input_ids.min())}, {int(input_ids.max())}]")
    batch = input_ids.shape[0]
    if labels is not None:
        if labels.shape != input_ids.shape:
            raise ValueError(f"`labels` must have the shape of `input_ids` {tuple(input_ids.shape)}, "
                             f"got {tuple(labels.shape)}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"`labels` must be integer token ids (or -100), got {labels.dtype}")
        bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= config.vocab_size))
        if on_cpu and bad.any():
            raise ValueError(f"`labels` must lie in [0, vocab_size={config.vocab_size}) or be -100")
    if puzzle_identifiers is not None:
        if puzzle_identifiers.shape != (batch,):
            raise ValueError(f"`puzzle_identifiers` must have shape ({batch},), got "
                             f"{tuple(puzzle_identifiers.shape)}")
        if on_cpu and (puzzle_identifiers.min() < 0
                       or puzzle_identifiers.max() >= config.num_puzzle_identifiers):
            raise ValueError(f"`puzzle_identifiers` must lie in [0, num_puzzle_identifiers="
                             f"{config.num_puzzle_identifiers}); got values in [{int(puzzle_identifiers.min())}, "
                             f"{int(puzzle_identifiers.max())}]")
    if carry is not None:
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


class LSTMTRMForPuzzleSolving(LSTMTRMPreTrainedModel):
    """LSTM-TRM for puzzles: the backbone (`model`), the answer head (`lm_head`, a token per cell) and the Q head
    (halting), with deep supervision, ACT halting, the loss (metric sums and counts) and `solve`."""

    state_class = LSTMTRMCarry

    def __init__(self, config: LSTMTRMConfig):
        super().__init__(config)
        self.model = LSTMTRMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.q_head = nn.Linear(config.hidden_size, 2)
        if config.puzzle_emb_ndim and config.puzzle_emb_sparse:  # its optimizer gathers the sparse rows itself
            self._ddp_params_and_buffers_to_ignore = ["model.puzzle_emb.weight"]
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.embed_tokens = value

    def optimizer_groups(self, weight_decay: float, puzzle_emb_lr: float | None = None,
                         puzzle_emb_weight_decay: float | None = None) -> list[dict]:
        """How the parameters are optimised (as nanoGPT's `configure_optimizers`): matrices decay, biases do not, and
        the puzzle embedding, which TRM trains much faster than the network, has a group of its own (learning rate
        and weight decay where given; `sparse_rows` when it has sparse gradients)."""
        puzzle_emb = self.model.puzzle_emb.weight if self.model.puzzle_emb is not None else None
        groups = {"decay": [], "no_decay": [], "puzzle": []}
        for param in self.parameters():
            if param.requires_grad:
                key = "puzzle" if param is puzzle_emb else "decay" if param.dim() >= 2 else "no_decay"
                groups[key].append(param)
        puzzle = {} if puzzle_emb_lr is None else {"lr": puzzle_emb_lr}
        return [{"params": groups["decay"], "weight_decay": weight_decay},
                {"params": groups["no_decay"], "weight_decay": 0.0},
                {"params": groups["puzzle"], **puzzle, "sparse_rows": self.config.puzzle_emb_sparse,
                 "weight_decay": weight_decay if puzzle_emb_weight_decay is None else puzzle_emb_weight_decay}]

    def initial_carry(self, input_ids, labels=None, puzzle_identifiers=None) -> LSTMTRMCarry:
        """A carry in which every row has halted, so the first call takes all of its puzzles from the batch."""
        return initial_carry(self.model, input_ids, labels, puzzle_identifiers)

    # ----- one deep-supervision step --------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: torch.LongTensor | None = None,
        puzzle_identifiers: torch.LongTensor | None = None,
        cache: LSTMTRMCarry | None = None,
        return_dict: bool | None = None,
        past_key_values: LSTMTRMCarry | None = None,
        **kwargs,
    ) -> LSTMTRMOutput | tuple:
        """One deep-supervision step.

        Rows that halted in `cache` (all rows when it is None) restart from the initial h, c with their puzzle
        (`input_ids`, `labels`, `puzzle_identifiers`) taken from this batch; the others continue their own.
        `past_key_values` is the carry's older name (transformers < 5.24), accepted alike.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        carry = carried_state_argument(cache, past_key_values)
        check_inputs(self.config, input_ids, labels, puzzle_identifiers, carry)
        out = self._step(input_ids.long(), None if labels is None else labels.long(), puzzle_identifiers, carry)
        return out if return_dict else out.to_tuple()

    def _step(self, input_ids, labels, puzzle_identifiers, carry) -> LSTMTRMOutput:
        """`forward` after its checks (`solve` runs its steps through here, checked once)."""
        if carry is None:
            carry = self.initial_carry(input_ids, labels, puzzle_identifiers)
        fresh = carry.halted  # the rows that take a new puzzle now
        carry = carry.refill(self.model.h_init, self.model.c_init, input_ids, labels, puzzle_identifiers)
        h, c, inputs, labels, puzzle_ids = carry.h, carry.c, carry.inputs, carry.labels, carry.puzzle_identifiers

        with self.model.autocast(input_ids.device.type):
            x = self.model.embed(inputs, puzzle_ids)
            if self.training and self.config.progressive_steps:
                h, c = self._progressive_start(x, h, c, fresh)
            h, c = self.model.recurse(x, h, c)
            logits = self.lm_head(c[:, self.config.puzzle_emb_len:]).float()
            q_logits = self.q_head(c.mean(dim=1) if self.config.q_head_input == "mean" else c[:, 0]).float()
        q_halt, q_continue = q_logits.unbind(-1)

        with torch.no_grad():
            steps = carry.steps + 1
            halted = steps >= self.config.halt_max_steps
            if self.training and self.config.halt_max_steps > 1:
                halted = halted | (q_halt > 0)
                explore = torch.rand_like(q_halt) < self.config.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, 2, self.config.halt_max_steps + 1)
                halted = halted & (steps >= min_steps)
            elif not self.training and self.config.eval_early_halt:
                halted = halted | (q_halt > 0)

        loss = metrics = None
        if labels is not None:
            loss, metrics = self._loss_and_metrics(logits, q_halt, labels, halted, steps)
        new_carry = LSTMTRMCarry(h.detach(), c.detach(), steps, halted, inputs, labels, puzzle_ids)
        return LSTMTRMOutput(loss=loss, logits=logits, q_halt_logits=q_halt, q_continue_logits=q_continue,
                             cache=new_carry, metrics=metrics)

    @torch.no_grad()
    def _progressive_start(self, x, h, c, fresh):
        """Progressive training (`config.progressive_steps`): the rows starting a new puzzle run r supervision steps
        without gradients first, r drawn uniformly from 0..progressive_steps (on the CPU generator: no device sync
        for the draw; the rows are found with one `nonzero`)."""
        r = int(torch.randint(0, self.config.progressive_steps + 1, ()))
        rows = fresh.nonzero().squeeze(-1) if r else fresh.new_zeros(0, dtype=torch.long)
        if not len(rows):
            return h, c
        hs, cs = self.model.recurse(x[rows], h[rows], c[rows], recursions=r * self.config.T_cycles)
        return h.index_copy(0, rows, hs.to(h.dtype)), c.index_copy(0, rows, cs.to(c.dtype))

    def _loss_and_metrics(self, logits, q_halt, labels, halted, steps):
        valid = labels != IGNORE_INDEX
        counts = valid.sum(-1)
        cross_entropy = stablemax_cross_entropy if self.config.loss_type == "stablemax" else softmax_cross_entropy
        per_cell = cross_entropy(logits, labels)
        lm_loss = (per_cell / counts.clamp(min=1).unsqueeze(-1)).sum(-1).mean()
        with torch.no_grad():
            correct = valid & (logits.argmax(-1) == labels)
            solved = correct.sum(-1) == counts
        q_loss = F.binary_cross_entropy_with_logits(q_halt, solved.to(q_halt.dtype))
        loss = (lm_loss + self.config.q_loss_weight * q_loss).float()
        with torch.no_grad():  # (sum, count) pairs: over the rows that halted now, and over the batch for losses
            done = halted & (counts > 0)
            n, batch = done.sum().float(), torch.tensor(float(len(labels)), device=labels.device)
            cell_accuracy = correct.sum(-1) / counts.clamp(min=1)
            metrics = {
                "cell_accuracy": (torch.where(done, cell_accuracy, 0).sum(), n),
                "exact_accuracy": ((done & solved).sum().float(), n),
                "q_halt_accuracy": ((done & ((q_halt > 0) == solved)).sum().float(), n),
                "steps": (torch.where(done, steps, 0).sum().float(), n),
                "lm_loss": (lm_loss.detach().float() * batch, batch),
                "q_halt_loss": (q_loss.detach().float() * batch, batch),
            }
        return loss, metrics

    # ----- inference ------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def solve(
        self,
        input_ids: torch.LongTensor,
        puzzle_identifiers: torch.LongTensor | None = None,
        max_steps: int | None = None,
        return_trace: bool = False,
        run_to_max: bool = False,
        num_trajectories: int = 1,
        noise_scale: float = 0.0,
        answer_checker=None,
        generator: torch.Generator | None = None,
        fixed_point_steps: int | None = None,
    ) -> LSTMTRMSolveOutput:
        """Run supervision steps until every row has halted (Q head says halt, or `max_steps`, by default
        `halt_max_steps`). Each row's prediction is its answer at its halting step. `run_to_max=True` keeps going to
        `max_steps` (the trace then shows whether solved answers stay solved). `fixed_point_steps=k` also halts a row
        whose answer has not changed for k steps (a stopping rule that grows with the problem, for thinking longer
        than training did: set `max_steps` high).

        Test-time trajectories: `num_trajectories=K` solves each puzzle K times in one batch, trajectory 0 from the
        initial state and the others from it plus Gaussian noise of std `noise_scale` on h and c, and keeps, per
        puzzle, the trajectory whose Q head is most confident that it halted on a right answer. `answer_checker`
        (a function of (input_ids, answers) -> bool per row, e.g. "a valid grid that keeps the givens") adds a second
        pick, among the trajectories whose answer passes it (the Q head's pick where none does).
        """
        max_steps = self.config.halt_max_steps if max_steps is None else max_steps
        for name, value in (("max_steps", max_steps), ("num_trajectories", num_trajectories),
                            ("fixed_point_steps", 1 if fixed_point_steps is None else fixed_point_steps)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be an integer of at least 1, got {value!r}")
        if not 0 <= noise_scale < math.inf:
            raise ValueError(f"`noise_scale` must be a finite number >= 0, got {noise_scale}")
        check_inputs(self.config, input_ids, None, puzzle_identifiers, None)  # once: the steps below skip the checks
        input_ids = input_ids.long()
        batch, k = input_ids.shape[0], num_trajectories
        carry = None
        if k > 1:
            input_ids = input_ids.repeat_interleave(k, 0)
            if puzzle_identifiers is not None:
                puzzle_identifiers = puzzle_identifiers.repeat_interleave(k, 0)
            carry = self.noisy_carry(input_ids, puzzle_identifiers, noise_scale, k, generator)
        was_training = self.training
        self.eval()
        try:
            run = self._run_steps(input_ids, puzzle_identifiers, carry, max_steps, return_trace or k > 1, run_to_max,
                                  fixed_point_steps)
        finally:
            self.train(was_training)
        predictions, halted_at, final, trace, q_trace, q_at_halt = run
        if k == 1:
            return LSTMTRMSolveOutput(predictions=predictions, halted_at=halted_at, final_predictions=final,
                                      trace=trace if return_trace else None,
                                      q_halt_trace=q_trace if return_trace else None)
        rows = torch.arange(batch, device=input_ids.device)
        confidence, final_confidence = q_at_halt.view(batch, k), q_trace[-1].view(batch, k)
        pick, final_pick = confidence.argmax(-1), final_confidence.argmax(-1)
        chosen = rows * k + pick
        output = LSTMTRMSolveOutput(
            predictions=predictions[chosen], halted_at=halted_at[chosen],
            final_predictions=final[rows * k + final_pick],
            trace=trace[:, chosen] if return_trace else None, q_halt_trace=q_trace[:, chosen] if return_trace else None,
            trajectory=pick, final_trajectory=final_pick)
        if answer_checker is not None:
            for name, answers, scores in (("checked_predictions", predictions, confidence),
                                          ("checked_final_predictions", final, final_confidence)):
                passed = torch.as_tensor(answer_checker(input_ids, answers), device=scores.device).view(batch, k)
                best = torch.where(passed, scores, scores.new_tensor(-torch.inf)).argmax(-1)
                best = torch.where(passed.any(-1), best, scores.argmax(-1))
                setattr(output, name, answers[rows * k + best])
        return output

    def noisy_carry(self, input_ids, puzzle_identifiers, noise_scale: float, num_trajectories: int,
                    generator: torch.Generator | None = None) -> LSTMTRMCarry:
        """A carry whose rows start on their puzzles from the initial h, c plus noise, except every
        `num_trajectories`-th row (trajectory 0), which starts exactly as `solve` does."""
        carry = self.initial_carry(input_ids, None, puzzle_identifiers)
        shape = carry.h.shape
        clean = (torch.arange(shape[0], device=input_ids.device) % num_trajectories == 0).view(-1, 1, 1)
        noise = [torch.randn(shape, generator=generator, device=input_ids.device) * noise_scale for _ in range(2)]
        return replace(carry, h=torch.where(clean, carry.h, carry.h + noise[0]),
                       c=torch.where(clean, carry.c, carry.c + noise[1]), halted=torch.zeros_like(carry.halted))

    def _run_steps(self, input_ids, puzzle_identifiers, carry, max_steps: int, keep_trace: bool, run_to_max: bool,
                   fixed_point_steps: int | None = None):
        """The supervision loop of `solve`: answers at each row's halting step, halting steps, last answers, the
        trace and Q-halt trace (when kept), and each row's Q-halt logit at its halting step."""
        batch = input_ids.shape[0]
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        unchanged = torch.zeros(batch, dtype=torch.long, device=input_ids.device)  # steps each answer has held
        halted_at = torch.full((batch,), max_steps, dtype=torch.long, device=input_ids.device)
        predictions = q_at_halt = previous = None
        trace, q_trace = [], []
        for step in range(1, max_steps + 1):
            out = self._step(input_ids, None, puzzle_identifiers, carry)
            answer, q = out.logits.argmax(-1), out.q_halt_logits
            if predictions is None:
                predictions, q_at_halt = answer.clone(), q.clone()
            now = ~done & ((q > 0) | (step == max_steps))
            if fixed_point_steps:
                if previous is not None:
                    unchanged = torch.where((answer == previous).all(-1), unchanged + 1, 0)
                previous = answer
                now |= ~done & (unchanged >= fixed_point_steps)
            predictions[now], q_at_halt[now], halted_at[now] = answer[now], q[now], step
            done |= now
            if keep_trace:
                trace.append(answer)
                q_trace.append(q)
            if done.all() and not run_to_max:
                break
            carry = replace(out.cache, halted=torch.zeros_like(done))  # keep every row going
        stacked = (torch.stack(trace), torch.stack(q_trace)) if keep_trace else (None, None)
        return predictions, halted_at, answer, *stacked, q_at_halt


def fixed_point_stop(trace: torch.Tensor, q_halt_trace: torch.Tensor, fixed_point_steps: int):
    """Where `solve(..., fixed_point_steps=k)` would have stopped each row, read off a trace that ran on
    (`solve(..., return_trace=True, run_to_max=True)`): the first step whose answer has held for k steps or whose Q
    head halts, else the last. Returns the answers there and the (1-based) steps, so one deep run scores several k."""
    if not isinstance(fixed_point_steps, numbers.Integral) or isinstance(fixed_point_steps, bool) \
            or fixed_point_steps < 1:
        raise ValueError(f"`fixed_point_steps` must be an integer of at least 1 (steps the answer must hold), got "
                         f"{fixed_point_steps!r}")
    steps, batch = trace.shape[:2]
    held = torch.zeros(batch, dtype=torch.long, device=trace.device)
    stop = torch.full((batch,), steps, dtype=torch.long, device=trace.device)
    for step in range(steps):
        if step:
            held = torch.where((trace[step] == trace[step - 1]).all(-1), held + 1, 0)
        now = (stop == steps) & ((q_halt_trace[step] > 0) | (held >= fixed_point_steps))
        stop = torch.where(now, step + 1, stop)
    return trace[stop - 1, torch.arange(batch, device=trace.device)], stop


__all__ = [
    "fixed_point_stop",
    "LSTMTRMCarry",
    "LSTMTRMForPuzzleSolving",
    "LSTMTRMModelOutput",
    "LSTMTRMOutput",
    "LSTMTRMSolveOutput",
    "LSTMTRMPreTrainedModel",
    "LSTMTRMModel",
    "stablemax_cross_entropy",
]
