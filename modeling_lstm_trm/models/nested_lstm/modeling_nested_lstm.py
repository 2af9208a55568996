"""Nested persistent-state LSTM language model.

Level 1 is an LSTM whose (h, c) state is carried from call to call in a `NestedLSTMState`, exposed like a KV cache
(`cache` in, `outputs.cache` out; its older name `past_key_values` works too). Levels 2.. are residual feed-forward
blocks whose parameters update on slower clocks (see `MultiTimescaleOptimizer`); at inference they are ordinary
position-wise layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_nested_lstm import NestedLSTMConfig

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


def _refuse_integer_mask(rows: torch.Tensor, batch_size: int) -> None:
    """Integer `rows` are row indices; a 0/1 integer mask of the batch's length (repeated values, so not a list of
    distinct rows) would silently reset rows 0 and 1: it must be passed as a bool mask."""
    if (rows.dtype != torch.bool and rows.dim() == 1 and len(rows) == batch_size > 1
            and bool(((rows == 0) | (rows == 1)).all()) and len(rows.unique()) < len(rows)):
        raise ValueError("`rows` looks like a 0/1 mask: pass a bool mask (`rows.bool()`); integers are row indices")


class NestedLSTMState:
    """The carried recurrent state: (h, c) of every LSTM layer, each of shape (num_layers, batch, hidden).

    It plays the role of a KV cache: pass it as `cache` and read the next one from `outputs.cache`. `forward` never
    mutates the state it is given; `reset`, `reorder_cache` and `detach_` change it in place, `detach` returns a
    detached copy (truncated BPTT).
    """

    is_compileable = False
    is_croppable = False
    # transformers >= 5.24 slices a continued prompt by `get_seq_length()` unless every layer is "linear" (a state
    # that cannot say how many tokens it holds); this one counts them, so no layer reports itself as such.
    is_linear = property(lambda self: [False] * self.num_layers)

    def __init__(self, h: torch.Tensor, c: torch.Tensor, seen_tokens: int = 0):
        if h.shape != c.shape or h.dim() != 3:
            raise ValueError(
                f"h and c must both be (num_layers, batch, hidden); got {tuple(h.shape)} and {tuple(c.shape)}"
            )
        self.h = h
        self.c = c
        self.seen_tokens = seen_tokens

    @classmethod
    def zeros(cls, config: NestedLSTMConfig, batch_size: int, device=None, dtype=torch.float32) -> NestedLSTMState:
        shape = (config.num_lstm_layers, batch_size, config.hidden_size)
        return cls(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))

    @property
    def batch_size(self) -> int:
        return self.h.shape[1]

    @property
    def num_layers(self) -> int:
        return self.h.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.h.shape[2]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of positions (columns, padding included) consumed since the state was created or fully reset."""
        return self.seen_tokens

    def detach(self) -> NestedLSTMState:
        """A copy cut from the autograd graph: the next call backpropagates no further than here."""
        return NestedLSTMState(self.h.detach(), self.c.detach(), self.seen_tokens)

    def reset(self, rows: torch.Tensor | list[int] | int) -> NestedLSTMState:
        """Zero the state of the given batch rows (a bool mask of length batch, or row indices), in place."""
        rows = torch.as_tensor(rows, device=self.h.device)
        _refuse_integer_mask(rows, self.batch_size)
        if rows.dtype == torch.bool:
            if rows.shape != (self.batch_size,):
                raise ValueError(f"a boolean `rows` mask must have shape ({self.batch_size},), got {tuple(rows.shape)}")
            keep = ~rows
        else:
            rows = rows.reshape(-1).long()
            if rows.numel() and (rows.min() < -self.batch_size or rows.max() >= self.batch_size):
                raise ValueError(f"`rows` must index the batch of size {self.batch_size}, got {rows.tolist()}")
            keep = torch.ones(self.batch_size, dtype=torch.bool, device=self.h.device)
            keep[rows] = False
        keep = keep.view(1, -1, 1).to(self.h.dtype)
        self.h = self.h * keep
        self.c = self.c * keep
        if not keep.any():
            self.seen_tokens = 0
        return self

    def reorder_cache(self, beam_idx: torch.LongTensor) -> NestedLSTMState:
        """Select batch rows (beam search), in place."""
        beam_idx = beam_idx.to(self.h.device)
        self.h = self.h.index_select(1, beam_idx)
        self.c = self.c.index_select(1, beam_idx)
        return self

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Plain tensors, for safetensors checkpoints."""
        return {"h": self.h.detach().contiguous(), "c": self.c.detach().contiguous(),
                "seen_tokens": torch.tensor([self.seen_tokens])}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> NestedLSTMState:
        return cls(tensors["h"], tensors["c"], int(tensors["seen_tokens"].item()))

    def to(self, *args, **kwargs) -> NestedLSTMState:
        return NestedLSTMState(self.h.to(*args, **kwargs), self.c.to(*args, **kwargs), self.seen_tokens)

    def __repr__(self) -> str:
        return (f"NestedLSTMState(num_layers={self.num_layers}, batch_size={self.batch_size}, "
                f"hidden_size={self.hidden_size}, seen_tokens={self.seen_tokens})")


@dataclass
class NestedLSTMModelOutput(CarriedStateOutput):
    """Output of [`NestedLSTMModel`]: the top level's hidden states and the carried state."""

    last_hidden_state: torch.FloatTensor | None = None
    cache: NestedLSTMState | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class NestedLSTMCausalLMOutput(CarriedStateOutput):
    """Output of [`NestedLSTMForCausalLM`].

    surprise: per-token negative log-likelihood (nats) of the targets, (batch, time), with 0 where there is no
    target; returned when `compute_surprise=True`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: NestedLSTMState | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    surprise: torch.FloatTensor | None = None


class NestedLSTMFeedForwardLevel(nn.Module):
    """A slow level: pre-norm residual GELU MLP, position-wise (LayerNorm: its fused CPU kernels are the cheap ones)."""

    def __init__(self, config: NestedLSTMConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.down_proj(F.gelu(self.up_proj(self.norm(x)))))


class NestedLSTMPreTrainedModel(PreTrainedModel):
    config_class = NestedLSTMConfig
    config: NestedLSTMConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["NestedLSTMFeedForwardLevel"]
    _is_stateful = True

    def save_pretrained(self, save_directory, *args, **kwargs):
        if os.path.isfile(save_directory):  # transformers would log this and return having saved nothing
            raise ValueError(f"save_pretrained: {save_directory} is a file, not a folder")
        return super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        std = self.config.initializer_range
        if isinstance(module, nn.LSTM):
            # PyTorch's uniform LSTM init, with forget-gate bias 1 so the cell remembers from the start.
            bound = module.hidden_size ** -0.5
            for name, param in module.named_parameters():
                if name.startswith("weight"):
                    init.uniform_(param, -bound, bound)
                elif name.startswith("bias_ih"):
                    bias = torch.zeros_like(param)
                    bias[module.hidden_size: 2 * module.hidden_size] = 1.0  # gate order: input, forget, cell, output
                    init.copy_(param, bias)
                else:
                    init.zeros_(param)
        elif isinstance(module, NestedLSTMFeedForwardLevel):
            init.normal_(module.up_proj.weight, std=std)
            init.zeros_(module.up_proj.bias)
            init.normal_(module.down_proj.weight, std=std / (2 * max(1, self.config.num_levels - 1)) ** 0.5)
            init.zeros_(module.down_proj.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)


class NestedLSTMModel(NestedLSTMPreTrainedModel):
    """Embeddings -> LSTM level (carried state) -> feed-forward levels -> final norm."""

    def __init__(self, config: NestedLSTMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.hidden_size,
            config.hidden_size,
            num_layers=config.num_lstm_layers,
            batch_first=True,
            dropout=config.dropout if config.num_lstm_layers > 1 else 0.0,
        )
        self.levels = nn.ModuleList(NestedLSTMFeedForwardLevel(config) for _ in config.level_update_every[1:])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def level_parameters(self) -> list[list[nn.Parameter]]:
        """Parameters grouped by level: index 0 is level 1 (embeddings, LSTM, final norm), then one per slow level."""
        fast = list(self.embed_tokens.parameters()) + list(self.lstm.parameters()) + list(self.norm.parameters())
        return [fast] + [list(level.parameters()) for level in self.levels]

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: NestedLSTMState | None = None,
        attention_mask: torch.Tensor | None = None,
        reset_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: NestedLSTMState | None = None,
        **kwargs,
    ) -> NestedLSTMModelOutput | tuple:
        """
        Args:
            input_ids: (batch, time) token ids in [0, vocab_size).
            cache: the `NestedLSTMState` returned by the previous call; None starts from zeros. `past_key_values` is
                its older name (transformers < 5.24), accepted alike.
            attention_mask: (batch, time), or (batch, past + time) as `generate` passes it. Positions with 0 are
                skipped: they leave the state untouched (left padding).
            reset_mask: (batch, time) bool. True at (b, t): a document starts at t in row b, so that row's state
                is zeroed before token t is read.
        """
        use_cache = self.config.use_cache if use_cache is None else use_cache
        output_hidden_states = (
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict

        batch_size, seq_len = self._check_inputs(input_ids, inputs_embeds)
        state = self._check_state(carried_state_argument(cache, past_key_values), batch_size)
        past_length = 0 if state is None else state.get_seq_length()
        attention_mask = self._check_attention_mask(attention_mask, batch_size, seq_len, past_length)
        if reset_mask is not None and tuple(reset_mask.shape) != (batch_size, seq_len):
            raise ValueError(
                f"`reset_mask` must have the shape of the input, ({batch_size}, {seq_len}); "
                f"got {tuple(reset_mask.shape)}"
            )

        hidden = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        hidden = self.dropout(hidden)
        if state is None:
            state = NestedLSTMState.zeros(self.config, batch_size, device=hidden.device, dtype=hidden.dtype)
        hidden, (h, c) = self._run_lstm(hidden, state.h, state.c, attention_mask, reset_mask)
        hidden = self.dropout(hidden)
        all_hidden = (hidden,) if output_hidden_states else None
        for level in self.levels:
            hidden = level(hidden)
            if output_hidden_states:
                all_hidden += (hidden,)
        hidden = self.norm(hidden)

        new_state = NestedLSTMState(h, c, past_length + seq_len) if use_cache else None
        if not return_dict:
            return tuple(v for v in (hidden, new_state, all_hidden) if v is not None)
        return NestedLSTMModelOutput(last_hidden_state=hidden, cache=new_state, hidden_states=all_hidden)

    def _check_inputs(self, input_ids, inputs_embeds) -> tuple[int, int]:
        """(batch, time) of the input, checked. The ids' values only where they live on the CPU: elsewhere reading
        them would make every step wait for the device (an id out of range then fails in the embedding)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
        if input_ids is None:
            if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.hidden_size:
                raise ValueError(f"`inputs_embeds` must be (batch, time, {self.config.hidden_size}), "
                                 f"got {tuple(inputs_embeds.shape)}")
            return tuple(inputs_embeds.shape[:2])
        if input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must be (batch, time), got shape {tuple(input_ids.shape)}")
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise ValueError(f"`input_ids` must be integer token ids, got {input_ids.dtype}")
        if input_ids.shape[0] == 0:
            raise ValueError("`input_ids` is an empty batch (0 rows)")
        if input_ids.device.type == "cpu" and input_ids.numel() and (
                input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(f"`input_ids` must lie in [0, vocab_size={self.config.vocab_size}); got values in "
                             f"[{int(input_ids.min())}, {int(input_ids.max())}]")
        return tuple(input_ids.shape)

    def _check_state(self, state: NestedLSTMState | None, batch_size: int) -> NestedLSTMState | None:
        if state is None:
            return None
        if not isinstance(state, NestedLSTMState):
            raise ValueError(f"`cache` must be a NestedLSTMState, got {type(state).__name__}")
        expected = (self.config.num_lstm_layers, batch_size, self.config.hidden_size)
        for what, got, want in zip(("layer count", "batch size", "hidden size"), state.h.shape, expected):
            if got != want:
                raise ValueError(f"`cache` has {what} {got}, but this call needs {want}")
        return state

    @staticmethod
    def _check_attention_mask(mask, batch_size: int, seq_len: int, past_length: int) -> torch.Tensor | None:
        if mask is None:
            return None
        if mask.dim() != 2 or mask.shape[0] != batch_size or mask.shape[1] not in (seq_len, past_length + seq_len):
            raise ValueError(
                f"`attention_mask` must be ({batch_size}, {seq_len}) or, covering the past, "
                f"({batch_size}, {past_length + seq_len}); got {tuple(mask.shape)}"
            )
        mask = mask[:, -seq_len:].bool() if seq_len else mask[:, :0].bool()
        return None if bool(mask.all()) else mask

    def _run_lstm(self, x, h, c, attention_mask, reset_mask):
        """Run the LSTM, splitting the call at the columns where some row starts a new document."""
        if reset_mask is None or not reset_mask.any():
            return self._run_segment(x, h, c, attention_mask)
        reset_mask = reset_mask.bool()
        cuts = torch.nonzero(reset_mask.any(0)).flatten().tolist()
        bounds = sorted(set([0, *cuts, x.shape[1]]))
        outputs = []
        for start, end in zip(bounds[:-1], bounds[1:]):
            state = NestedLSTMState(h, c).reset(reset_mask[:, start])
            h, c = state.h, state.c
            mask = None if attention_mask is None else attention_mask[:, start:end]
            out, (h, c) = self._run_segment(x[:, start:end], h, c, mask)
            outputs.append(out)
        return torch.cat(outputs, dim=1), (h, c)

    def _run_segment(self, x, h, c, mask):
        """One LSTM call; masked positions are skipped, so they neither read input nor change the state."""
        if mask is None or bool(mask.all()):
            return self.lstm(x, (h.to(x.dtype), c.to(x.dtype)))
        lengths = mask.sum(1)
        out = x.new_zeros(x.shape[0], x.shape[1], self.config.hidden_size)
        live = torch.nonzero(lengths > 0).flatten()
        if live.numel() == 0:
            return out, (h, c)
        # Move each row's unmasked tokens to the front (stable), run them as a packed batch, then put them back.
        order = torch.argsort((~mask[live]).to(torch.int8), dim=1, stable=True)
        gather_idx = order.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        packed = pack_padded_sequence(
            x[live].gather(1, gather_idx), lengths[live].cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, (h_live, c_live) = self.lstm(packed, (h[:, live].to(x.dtype), c[:, live].to(x.dtype)))
        compact, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
        out_live = torch.zeros_like(compact).scatter(1, order.unsqueeze(-1).expand_as(compact), compact)
        out = out.index_copy(0, live, out_live)
        h = h.to(h_live.dtype).index_copy(1, live, h_live)
        c = c.to(c_live.dtype).index_copy(1, live, c_live)
        return out, (h, c)


class NestedLSTMForCausalLM(NestedLSTMPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    state_class = NestedLSTMState

    def __init__(self, config: NestedLSTMConfig):
        super().__init__(config)
        self.model = NestedLSTMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.lm_head = new_embeddings

    def level_parameters(self) -> list[list[nn.Parameter]]:
        """One list per level; the head (when not tied to the embeddings) belongs to level 1."""
        levels = self.model.level_parameters()
        seen = {id(p) for level in levels for p in level}
        levels[0] += [p for p in self.lm_head.parameters() if id(p) not in seen]
        return levels

    def generate(self, *args, **kwargs):
        """`GenerationMixin.generate`, after checking that a carried state passed in is this model's."""
        for name in ("cache", "past_key_values"):
            state = kwargs.get(name)
            if state is not None and not isinstance(state, NestedLSTMState):
                raise TypeError(f"`{name}` must be a NestedLSTMState (this model's carried state), got "
                                f"{type(state).__name__}")
        return super().generate(*args, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the carried state is a NestedLSTMState, never a DynamicCache

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        next_sequence_length: int | None = None,
        cache: NestedLSTMState | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        is_first_iteration: bool | None = False,
        use_cache: bool | None = None,
        past_key_values: NestedLSTMState | None = None,
        **kwargs,
    ) -> dict:
        """After the prompt, only the newest token goes in: the state already holds everything before it.
        (`generate` hands the state over as `cache` from transformers 5.24 on, as `past_key_values` before.)"""
        model_inputs = {"cache": carried_state_argument(cache, past_key_values), "use_cache": use_cache}
        if inputs_embeds is not None and is_first_iteration:
            model_inputs["inputs_embeds"] = inputs_embeds
            seq_len = inputs_embeds.shape[1]
        else:
            if next_sequence_length is not None:
                input_ids = input_ids[:, -next_sequence_length:]
            model_inputs["input_ids"] = input_ids.contiguous()
            seq_len = input_ids.shape[1]
        if attention_mask is not None:
            model_inputs["attention_mask"] = attention_mask[:, -seq_len:]
        if "logits_to_keep" in kwargs:
            model_inputs["logits_to_keep"] = kwargs["logits_to_keep"]
        return model_inputs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: NestedLSTMState | None = None,
        attention_mask: torch.Tensor | None = None,
        reset_mask: torch.Tensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        shift_labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        compute_surprise: bool = False,
        logits_to_keep: int = 0,
        past_key_values: NestedLSTMState | None = None,
        **kwargs,
    ) -> NestedLSTMCausalLMOutput | tuple:
        """
        Args (beyond [`NestedLSTMModel.forward`]):
            labels: (batch, time) targets in the Transformers convention: shifted inside, so position t predicts
                labels[t + 1]; -100 is ignored.
            shift_labels: (batch, time) targets already aligned (position t predicts shift_labels[t]); use this
                when chunks of a stream are carried, so the last position of a chunk predicts the next chunk's first
                token.
            compute_surprise: also return the per-token negative log-likelihood (nats) as `surprise`.
            logits_to_keep: if > 0, compute logits only for the last that many positions (generation).
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.model(
            input_ids=input_ids,
            cache=carried_state_argument(cache, past_key_values),
            attention_mask=attention_mask,
            reset_mask=reset_mask,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden = outputs.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden).float()

        loss = surprise = None
        if labels is not None or shift_labels is not None:
            loss, surprise = self._loss(logits, labels, shift_labels, kwargs.get("num_items_in_batch"),
                                        compute_surprise)
        elif compute_surprise:
            raise ValueError("`compute_surprise=True` needs `labels` or `shift_labels`.")

        if not return_dict:
            out = (loss, logits, outputs.cache, outputs.hidden_states, surprise)
            return tuple(v for v in out if v is not None)
        return NestedLSTMCausalLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            surprise=surprise,
        )


    @staticmethod
    def _loss(logits, labels, shift_labels, num_items, compute_surprise: bool):
        """The mean next-token cross-entropy (over `num_items` where Trainer gives it) and, on request, each token's
        negative log-likelihood (its surprise)."""
        if shift_labels is None:
            shift_labels = F.pad(labels[:, 1:], (0, 1), value=-100)
        if shift_labels.shape != logits.shape[:2]:
            raise ValueError(f"labels must have shape {tuple(logits.shape[:2])}, got {tuple(shift_labels.shape)}")
        if shift_labels.is_floating_point() or shift_labels.is_complex() or shift_labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer token ids (or -100), got {shift_labels.dtype}")
        shift_labels = shift_labels.long()  # any integer dtype
        token_nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), shift_labels.reshape(-1).to(logits.device), reduction="none"
        ).view_as(shift_labels)  # ignore_index -100 gives 0
        denominator = num_items if num_items is not None else (shift_labels != -100).sum().clamp(min=1)
        return token_nll.sum() / denominator, token_nll.detach() if compute_surprise else None


__all__ = [
    "NestedLSTMState",
    "NestedLSTMModelOutput",
    "NestedLSTMCausalLMOutput",
    "NestedLSTMPreTrainedModel",
    "NestedLSTMModel",
    "NestedLSTMForCausalLM",
]
