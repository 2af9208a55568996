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
current puzzles: `carry_lstm_trm.py`) travels between supervision steps as `cache` (its older name `past_key_values`
works too), as transformers carries a KV cache; solving is `solving_lstm_trm.py`'s. This file is
`modeling_lstmtrm.py`, not `modeling_lstm_trm.py`: a model folder holding it must not shadow the package's name.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .carry_lstm_trm import IGNORE_INDEX, LSTMTRMCarry, check_model_inputs
from .configuration_lstm_trm import LSTMTRMConfig
from .pipeline_lstm_trm import CUSTOM_PIPELINES
from .solving_lstm_trm import LSTMTRMSolveOutput, LSTMTRMSolvingMixin, fixed_point_stop

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

AUTO_MAP = {"AutoModel": "modeling_lstmtrm.LSTMTRMModel",  # the backbone, as transformers' AutoModel gives
            "AutoModelForPuzzleSolving": "modeling_lstmtrm.LSTMTRMForPuzzleSolving",  # modeling_lstm_trm.auto
            "AutoModelForTokenClassification": "modeling_lstmtrm.LSTMTRMForPuzzleSolving"}  # (a token a cell) pipeline


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


@dataclass
class LSTMTRMOutput(CarriedStateOutput):
    """One deep-supervision step.

    metrics: `{name: (sum, count)}` tensors, present when labels are known: cell_accuracy, exact_accuracy,
    q_halt_accuracy and steps summed over the rows that halted at this step (count: those rows), lm_loss and
    q_halt_loss over the batch. Sums and counts, as TRM's loss head returns them, so anyone can average them.
    auxiliary_logits: the auxiliary head's, with `config.auxiliary_classes` (e.g. a maze's steps from S, mod 3).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    q_halt_logits: torch.FloatTensor | None = None
    q_continue_logits: torch.FloatTensor | None = None
    cache: LSTMTRMCarry | None = None
    metrics: dict[str, torch.Tensor] | None = None
    auxiliary_logits: torch.FloatTensor | None = None


@dataclass
class LSTMTRMModelOutput(CarriedStateOutput):
    """The backbone's output for one supervision step: `last_hidden_state` is the answer state c and
    `latent_state` the latent h, each (batch, puzzle-embedding positions + cells, hidden); `cache` carries both."""

    last_hidden_state: torch.FloatTensor | None = None
    latent_state: torch.FloatTensor | None = None
    cache: LSTMTRMCarry | None = None


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


def cross_max(grid: torch.Tensor) -> torch.Tensor:
    """Each channel's maximum over the cell and its 4 neighbours of a (batch, channels, side, side) grid."""
    return torch.maximum(F.max_pool2d(grid, (3, 1), stride=1, padding=(1, 0)),
                         F.max_pool2d(grid, (1, 3), stride=1, padding=(0, 1)))


class LSTMTRMLocalMixer(nn.Module):
    """A depthwise 3x3 convolution over the square grid: each cell reads its 8 neighbours (`conv_neighbours=4`: only
    the 4 a maze step reaches, the diagonal taps masked). Local and position-free, so the same weights read grids of
    any side; the puzzle-embedding positions in front are left unmixed. With `conv_max`, a scaled `cross_max` is
    added: a signal spreads one cell per block at full size however many neighbours carry it, as a breadth-first
    wave (a weighted sum's pace and size depend on the neighbourhood)."""

    def __init__(self, config: LSTMTRMConfig):
        super().__init__()
        self.prefix = config.puzzle_emb_len
        self.conv = nn.Conv2d(config.hidden_size, config.hidden_size, 3, padding=1, groups=config.hidden_size,
                              bias=False)
        self.max_scale = nn.Parameter(torch.ones(config.hidden_size)) if config.conv_max else None
        self.cross_only = config.conv_neighbours == 4

    def convolve(self, grid: torch.Tensor) -> torch.Tensor:
        if not self.cross_only:
            return self.conv(grid)
        weight = self.conv.weight.clone()  # on the weight's own device: no host-to-device copy per call
        weight[:, :, ::2, ::2] = 0  # the kernel's corners, its diagonal taps, read nothing whatever they hold
        return F.conv2d(grid, weight, padding=1, groups=self.conv.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        side = math.isqrt(length - self.prefix)
        # (batch, cells, channels) is already the channels-last layout of the grid: a view, no copy (1.7x faster)
        grid = x[:, self.prefix:].reshape(batch, side, side, width).permute(0, 3, 1, 2)
        mixed = self.convolve(grid) + (0 if self.max_scale is None else self.max_scale[:, None, None] * cross_max(grid))
        mixed = mixed.permute(0, 2, 3, 1).reshape(batch, side * side, width)
        return F.pad(mixed, (0, 0, self.prefix, 0)) if self.prefix else mixed


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
        if type(self)._auto_class is not None:  # shared as code: name both classes and the pipeline, whichever saves
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
            self.config.custom_pipelines = CUSTOM_PIPELINES
        return super().save_pretrained(save_directory, *args, **kwargs)

    def check_inputs(self, input_ids, labels=None, puzzle_identifiers=None, carry=None) -> None:
        """`carry_lstm_trm.check_model_inputs` with this model's config: the values only where the tensors live on the
        CPU, so that a training step on an accelerator never waits for a device-to-host read."""
        check_model_inputs(self.config, input_ids, labels, puzzle_identifiers, carry)

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
        elif isinstance(module, LSTMTRMLocalMixer) and module.max_scale is not None:
            init.ones_(module.max_scale)


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
        self.check_inputs(input_ids, None, puzzle_identifiers, carry)
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


class LSTMTRMForPuzzleSolving(LSTMTRMSolvingMixin, LSTMTRMPreTrainedModel):
    """LSTM-TRM for puzzles: the backbone (`model`), the answer head (`lm_head`, a token per cell) and the Q head
    (halting), with deep supervision, ACT halting, the loss (metric sums and counts) and `solve`
    (`solving_lstm_trm.LSTMTRMSolvingMixin`)."""

    state_class = LSTMTRMCarry

    def __init__(self, config: LSTMTRMConfig):
        super().__init__(config)
        self.model = LSTMTRMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.q_head = nn.Linear(config.hidden_size, 2)
        self.aux_head = nn.Linear(config.hidden_size, config.auxiliary_classes, bias=False) \
            if config.auxiliary_classes else None  # an auxiliary per-cell target, read off c like the answer
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
        self.check_inputs(input_ids, labels, puzzle_identifiers, carry)
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
                h, c, carry = self._progressive_start(x, h, c, fresh, carry)
            h, c = self.model.recurse(x, h, c)
            logits = self.lm_head(c[:, self.config.puzzle_emb_len:]).float()
            aux_logits = None if self.aux_head is None else self.aux_head(c[:, self.config.puzzle_emb_len:]).float()
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
            loss, metrics = self._loss_and_metrics(logits, q_halt, labels, halted, steps,
                                                   replace(carry, steps=steps).depth, aux_logits)
        new_carry = LSTMTRMCarry(h.detach(), c.detach(), steps, halted, inputs, labels, puzzle_ids, carry.head_start)
        return LSTMTRMOutput(loss=loss, logits=logits, q_halt_logits=q_halt, q_continue_logits=q_continue,
                             cache=new_carry, metrics=metrics, auxiliary_logits=aux_logits)

    @torch.no_grad()
    def _progressive_start(self, x, h, c, fresh, carry):
        """Progressive training (`config.progressive_steps`): the rows starting a new puzzle run r supervision steps
        without gradients first, r drawn uniformly from 0..progressive_steps (on the CPU generator: no device sync
        for the draw; the rows are found with one `nonzero`); the carry keeps r as those rows' `head_start`."""
        r = int(torch.randint(0, self.config.progressive_steps + 1, ()))
        rows = fresh.nonzero().squeeze(-1) if r else fresh.new_zeros(0, dtype=torch.long)
        if not len(rows):
            return h, c, carry
        head_start = torch.zeros_like(carry.steps) if carry.head_start is None else carry.head_start
        carry = replace(carry, head_start=head_start.index_fill(0, rows, r))
        hs, cs = self.model.recurse(x[rows], h[rows], c[rows], recursions=r * self.config.T_cycles)
        return h.index_copy(0, rows, hs.to(h.dtype)), c.index_copy(0, rows, cs.to(c.dtype)), carry

    def _mean_loss(self, logits, labels):
        """Cross-entropy per row over its scored cells, then over the batch."""
        cross_entropy = stablemax_cross_entropy if self.config.loss_type == "stablemax" else softmax_cross_entropy
        counts = (labels != IGNORE_INDEX).sum(-1, keepdim=True).clamp(min=1)
        return (cross_entropy(logits, labels) / counts).sum(-1).mean()

    def _auxiliary_due(self, aux_labels, depth):
        """With `auxiliary_front_speed` (labels: class + classes * arrival), each class scored from the step a front of
        that speed reaches its arrival, counting the row's depth; else the labels as they are."""
        classes, speed = self.config.auxiliary_classes, self.config.auxiliary_front_speed
        if not speed:
            return aux_labels
        due = (aux_labels != IGNORE_INDEX) & (aux_labels // classes <= speed * depth.unsqueeze(-1))
        return torch.where(due, aux_labels % classes, IGNORE_INDEX)

    def _loss_and_metrics(self, logits, q_halt, labels, halted, steps, depth, aux_logits=None):
        labels, aux_labels = labels[:, :logits.shape[1]], labels[:, logits.shape[1]:]  # the auxiliary target, if any
        valid = labels != IGNORE_INDEX
        counts = valid.sum(-1)
        lm_loss = self._mean_loss(logits, labels)
        with torch.no_grad():
            correct = valid & (logits.argmax(-1) == labels)
            solved = correct.sum(-1) == counts
        q_loss = F.binary_cross_entropy_with_logits(q_halt, solved.to(q_halt.dtype))
        loss = (lm_loss + self.config.q_loss_weight * q_loss).float()
        aux_loss = (self._mean_loss(aux_logits, self._auxiliary_due(aux_labels, depth))
                    if aux_logits is not None and aux_labels.shape[1] else None)
        if aux_loss is not None:
            loss = loss + self.config.auxiliary_loss_weight * aux_loss.float()
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
            if aux_loss is not None:
                metrics["auxiliary_loss"] = (aux_loss.detach().float() * batch, batch)
        return loss, metrics


__all__ = ["fixed_point_stop", "LSTMTRMCarry", "LSTMTRMForPuzzleSolving", "LSTMTRMModelOutput", "LSTMTRMOutput",
           "LSTMTRMSolveOutput", "LSTMTRMPreTrainedModel", "LSTMTRMModel", "stablemax_cross_entropy"]
