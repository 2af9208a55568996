"""Configuration of the nested persistent-state LSTM language model."""

from transformers import PretrainedConfig


def _require_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


class NestedLSTMConfig(PretrainedConfig):
    r"""
    Configuration of [`NestedLSTMModel`] and [`NestedLSTMForCausalLM`].

    The model is a stack of levels that learn on different timescales. Level 1 (the LSTM, together with the
    embeddings and the head) updates its parameters on every optimizer step; every further entry of
    `level_update_every` adds a residual feed-forward level whose parameters update only every that many optimizer
    steps, from the gradients accumulated in between (see `MultiTimescaleOptimizer`).

    Args:
        vocab_size (`int`): Number of tokens in the vocabulary.
        hidden_size (`int`): Width of the embeddings, the LSTM state and the feed-forward levels' residual stream.
        num_lstm_layers (`int`): Number of stacked LSTM layers in level 1. The carried state holds (h, c) of each.
        level_update_every (`list[int]`): Update period, in optimizer steps, of each level. The first entry is the
            LSTM level and must be 1; the list must be strictly increasing.
        intermediate_size (`int`, *optional*): Inner width of each feed-forward level. Defaults to `hidden_size // 4`,
            which keeps the slow levels within about 10% of the LSTM's training cost (see benchmarks/).
        dropout (`float`): Dropout on the embeddings, between LSTM layers, inside the feed-forward levels and
            before the head.
        tie_word_embeddings (`bool`): Share the input embedding matrix with the LM head.
        initializer_range (`float`): Standard deviation of the normal initialization of embeddings and linear layers.
        layer_norm_eps (`float`): Epsilon of the layer norms.
        use_cache (`bool`): Return the carried state (`cache`) from `forward` by default.
        surprise_weighting (`bool`): Weight each optimizer step's contribution to the slow levels' accumulated
            gradients by how surprising its batch was (mean negative log-likelihood over its running mean, bounded
            to [0.5, 2]); read by `MultiTimescaleOptimizer.from_model` and `StatefulTrainer`.
    """

    model_type = "nested_lstm"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the carried state (its name before transformers 5.24)

    def __init__(self, vocab_size: int = 256, hidden_size: int = 256, num_lstm_layers: int = 1,
                 level_update_every: list[int] | tuple[int, ...] = (1, 16, 256), intermediate_size: int | None = None,
                 dropout: float = 0.0, tie_word_embeddings: bool = True, initializer_range: float = 0.02,
                 layer_norm_eps: float = 1e-6, use_cache: bool = True, surprise_weighting: bool = False,
                 pad_token_id: int | None = None, bos_token_id: int | None = None, eos_token_id: int | None = None,
                 **kwargs):
        self.vocab_size, self.hidden_size, self.num_lstm_layers = vocab_size, hidden_size, num_lstm_layers
        self.level_update_every, self.intermediate_size = level_update_every, intermediate_size
        self.dropout, self.initializer_range, self.layer_norm_eps = dropout, initializer_range, layer_norm_eps
        self.use_cache, self.surprise_weighting = use_cache, bool(surprise_weighting)
        self.validate_settings(pad_token_id, bos_token_id, eos_token_id)
        self.level_update_every = list(level_update_every)
        if intermediate_size is None:
            self.intermediate_size = max(1, hidden_size // 4)
        for name in ("dropout", "initializer_range", "layer_norm_eps"):
            setattr(self, name, float(getattr(self, name)))
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)

    def validate_settings(self, *token_ids) -> None:
        """Every setting checked in one place (`token_ids`: pad, bos, eos, before the base class takes them):
        ValueError naming the first one that cannot work."""
        for name in ("vocab_size", "hidden_size", "num_lstm_layers", "intermediate_size"):
            value = getattr(self, name)
            if not (name == "intermediate_size" and value is None):
                _require_positive_int(name, value)
        periods = list(self.level_update_every) if isinstance(self.level_update_every, (list, tuple)) else None
        if not periods:
            raise ValueError(f"`level_update_every` must be a non-empty list of integers, got "
                             f"{self.level_update_every!r}")
        if any(isinstance(p, bool) or not isinstance(p, int) for p in periods):
            raise ValueError(f"`level_update_every` must contain only integers, got {periods!r}")
        if periods[0] != 1:
            raise ValueError(f"`level_update_every[0]` is the LSTM level and must be 1, got {periods[0]!r}")
        if any(b <= a for a, b in zip(periods, periods[1:])):
            raise ValueError(f"`level_update_every` must be strictly increasing, got {periods!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout!r}")
        for name in ("initializer_range", "layer_norm_eps"):
            if not 0 < float(getattr(self, name)) < float("inf"):
                raise ValueError(f"`{name}` must be a finite positive number, got {getattr(self, name)!r}")
        for name, token_id in zip(("pad_token_id", "bos_token_id", "eos_token_id"), token_ids):
            if token_id is not None and not 0 <= token_id < self.vocab_size:
                raise ValueError(f"`{name}` must be in [0, vocab_size={self.vocab_size}), got {token_id!r}")

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """As `PretrainedConfig.from_dict`, but a config saved for another model type is refused: transformers only
        logs it, then builds this model from foreign settings with random weights."""
        found = config_dict.get("model_type")
        if found not in (None, cls.model_type):
            raise ValueError(f"this config is a {found!r} model's, not a {cls.model_type!r} one: load the folder with "
                             "its own model class (or an Auto class)")
        return super().from_dict(config_dict, **kwargs)

    @property
    def num_levels(self) -> int:
        return len(self.level_update_every)


__all__ = ["NestedLSTMConfig"]
