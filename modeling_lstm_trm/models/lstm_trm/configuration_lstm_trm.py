"""Configuration of LSTM-TRM, a Tiny Recursive Model whose recursion is an LSTM-style cell."""

import math

from transformers import PretrainedConfig

MIXERS = ("mlp", "attention", "conv")
RECURRENCES = ("lstm", "trm")
LOSS_TYPES = ("stablemax", "softmax")
FORWARD_DTYPES = ("bfloat16", "float32", "float16")
Q_HEAD_INPUTS = ("mean", "first")
MLP_MIXER_NORMS = ("channels", "positions")


class LSTMTRMConfig(PretrainedConfig):
    r"""
    Configuration of [`LSTMTRMModel`] (the backbone) and [`LSTMTRMForPuzzleSolving`].

    One forward call is one deep-supervision step. Inside it, the cell runs `T_cycles` recursions (all but the last
    without gradients); each recursion updates the latent h (TRM's z) `n_cycles` times with the answer state c (TRM's
    y) fixed, then updates c once. Rows halt through the Q head (training) or at `halt_max_steps`.

    Args:
        vocab_size (`int`): Number of input/output tokens (Sudoku: blank + digits).
        seq_len (`int`): Length of every input (grid cells); inputs of another length are rejected.
        num_puzzle_identifiers (`int`): Size of the puzzle-identifier embedding table.
        puzzle_emb_ndim (`int`): Width of the puzzle embedding, prepended as `puzzle_emb_len` extra positions (zero
            padded); 0 disables it.
        puzzle_emb_len (`int`): Positions the puzzle embedding takes in front of the grid; 0 (the default) means
            `ceil(puzzle_emb_ndim / hidden_size)`. TRM's presets use 16.
        T_cycles (`int`): Recursions per supervision step (the last one with gradients).
        n_cycles (`int`): Updates of h per recursion.
        hidden_size (`int`): Width of h, c and the trunk.
        expansion (`float`): SwiGLU expansion of the channel (and token-mixing) MLPs: the inner width is
            `round(expansion * width * 2 / 3)` rounded up to a multiple of `mlp_multiple`.
        mlp_multiple (`int`): See `expansion`; 32 here, 256 in TRM's code.
        num_layers (`int`): Blocks in the shared trunk network.
        num_heads (`int`): Attention heads when `mixer="attention"`.
        mixer (`str`): Token mixing inside each block: "mlp" (a SwiGLU across the sequence axis, for fixed-size
            grids), "attention" (non-causal self-attention with rotary positions) or "conv" (a depthwise 3x3
            convolution over the square grid: local, so a model reads square grids of any side).
        conv_max (`bool`): With the conv mixer, also add each channel's maximum over the cell and its 4 neighbours
            (scaled per channel): a signal then spreads one cell per block at full size, as a breadth-first wave.
        conv_neighbours (`int`): With the conv mixer, the neighbours each cell reads: 8 (the full 3x3 kernel) or 4
            (its diagonal taps masked, read as zero: the cross a maze step can take): a signal then cannot cut a
            corner between two walls or cross an open field diagonally faster than a breadth-first wave.
        recurrence (`str`): "lstm" (gated update of c) or "trm" (TRM's reference update c <- f(c, h)).
        halt_max_steps (`int`): Supervision steps after which a row always halts.
        halt_exploration_prob (`float`): Probability, in training, of a random minimum number of steps before
            the Q head may halt a row.
        eval_early_halt (`bool`): In evaluation, also halt rows whose q_halt > 0 (default: run to `halt_max_steps`).
        forward_dtype (`str`): "bfloat16" runs the recursion under autocast; "float32" runs it in full precision.
        rms_norm_eps (`float`): Epsilon of the parameter-free RMS norms.
        rope_theta (`float`): Base of the rotary position frequencies (attention mixer).
        absolute_positions (`bool`, *optional*): Add learned absolute position embeddings to the input. Default:
            with the attention mixer (beside its rotary positions), not with the others; TRM's attention variant
            uses rotary positions alone.
        mlp_mixer_norm (`str`): With the MLP mixer, the axis its residual RMS norm runs over: "channels" (each
            position over its hidden units, as every other norm here) or "positions" (each hidden unit over the
            positions: TRM's code, which norms the token MLP's residual before transposing back).
        q_head_input (`str`): What the Q head reads: "mean" (of every position of c) or "first" (c's first
            position, the puzzle-embedding slot where there is one: TRM's choice).
        loss_type (`str`): "stablemax" (TRM's, in float64) or "softmax" cross-entropy.
        q_loss_weight (`float`): Weight of the halting (Q) binary cross-entropy.
        gate_bias_init (`float`): Initial bias of the forget gate (its negative for the input gate), so that at
            initialization c mostly takes the candidate, as in TRM, and learns when to keep itself.
        batch_size (`int`, *optional*): The global training batch the model was designed for (informational; the
            training scripts read it as their default).
        progressive_steps (`int`): In training, a row that starts a new puzzle first runs a random number (0 to this,
            one draw per batch) of supervision steps without gradients, so that its supervised steps start from
            wherever the recursion has got to: the model learns to improve any intermediate state rather than a fixed
            depth (Bansal et al. 2022, progressive training). 0 (default) turns it off.
        auxiliary_classes (`int`): With a positive value, a second head reads this many classes per cell off c, trained
            where `labels` carry a second target after the answer (`labels` of twice the input's length), with weight
            `auxiliary_loss_weight`: extra supervision beyond the answer (e.g. mazes' distances from S, modulo 3).
            0 (default): none, the answer alone, as TRM.
        auxiliary_loss_weight (`float`): See `auxiliary_classes`.
        auxiliary_front_speed (`int`): With a positive value, an auxiliary label is `class + auxiliary_classes *
            arrival`, and its class is scored only from supervision step `arrival / auxiliary_front_speed` on
            (counting progressive training's steps): a wave that moves this many cells a step cannot know a cell
            farther away yet, so it is not asked (e.g. a maze's distances from S, each from when a wave from S can have
            reached it). 0 (default): every class is asked at every step.
        puzzle_emb_sparse (`bool`): Train the puzzle embedding with sparse gradients (one row per identifier seen in
            the batch): for ARC's thousands of task versions, with the sign update of `training.sparse_rows`.
        task (`str`, *optional*): The task the model was trained on (`modeling_lstm_trm.tasks`: a task's name, or the
            module that defines it), so that evaluation and solving need not guess.
    """

    model_type = "lstm_trm"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the carried state (its name before transformers 5.24)

    def __init__(self, vocab_size: int = 10, seq_len: int = 81, num_puzzle_identifiers: int = 1,
                 puzzle_emb_ndim: int = 512, T_cycles: int = 3, n_cycles: int = 6, hidden_size: int = 512,
                 expansion: float = 4.0, num_layers: int = 2, num_heads: int = 8, mixer: str = "mlp",
                 recurrence: str = "lstm", halt_max_steps: int = 16, halt_exploration_prob: float = 0.1,
                 eval_early_halt: bool = False, forward_dtype: str = "bfloat16", rms_norm_eps: float = 1e-5,
                 rope_theta: float = 10000.0, loss_type: str = "stablemax", q_loss_weight: float = 0.5,
                 gate_bias_init: float = -2.0, batch_size: int | None = None, puzzle_emb_len: int = 0,
                 mlp_multiple: int = 32, absolute_positions: bool | None = None, q_head_input: str = "mean",
                 mlp_mixer_norm: str = "channels", puzzle_emb_sparse: bool = False, task: str | None = None,
                 progressive_steps: int = 0, auxiliary_classes: int = 0, auxiliary_loss_weight: float = 1.0,
                 auxiliary_front_speed: int = 0, conv_max: bool = False, conv_neighbours: int = 8, **kwargs):
        self.vocab_size, self.seq_len, self.num_puzzle_identifiers = vocab_size, seq_len, num_puzzle_identifiers
        self.puzzle_emb_ndim, self.puzzle_emb_len, self.puzzle_emb_sparse = puzzle_emb_ndim, puzzle_emb_len, \
            puzzle_emb_sparse
        self.T_cycles, self.n_cycles, self.halt_max_steps = T_cycles, n_cycles, halt_max_steps
        self.hidden_size, self.expansion, self.mlp_multiple = hidden_size, expansion, mlp_multiple
        self.num_layers, self.num_heads, self.mixer, self.recurrence = num_layers, num_heads, mixer, recurrence
        self.halt_exploration_prob, self.eval_early_halt = halt_exploration_prob, eval_early_halt
        self.forward_dtype, self.rms_norm_eps, self.rope_theta = forward_dtype, rms_norm_eps, rope_theta
        self.loss_type, self.q_loss_weight, self.gate_bias_init = loss_type, q_loss_weight, gate_bias_init
        self.batch_size, self.absolute_positions, self.q_head_input = batch_size, absolute_positions, q_head_input
        self.mlp_mixer_norm, self.task, self.progressive_steps = mlp_mixer_norm, task, progressive_steps
        self.auxiliary_classes, self.auxiliary_loss_weight = auxiliary_classes, auxiliary_loss_weight
        self.auxiliary_front_speed, self.conv_max = auxiliary_front_speed, bool(conv_max)
        self.conv_neighbours = conv_neighbours
        self.validate_settings()
        for name in ("expansion", "halt_exploration_prob", "rms_norm_eps", "rope_theta", "q_loss_weight",
                     "gate_bias_init", "auxiliary_loss_weight"):
            setattr(self, name, float(getattr(self, name)))
        self.eval_early_halt, self.puzzle_emb_sparse = bool(eval_early_halt), bool(puzzle_emb_sparse)
        self.puzzle_emb_len = puzzle_emb_len or -(-puzzle_emb_ndim // hidden_size)
        self.absolute_positions = mixer == "attention" if absolute_positions is None else bool(absolute_positions)
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    def validate_settings(self) -> None:
        """Every setting checked in one place: ValueError naming the first one that cannot work."""
        for name in ("vocab_size", "seq_len", "num_puzzle_identifiers", "T_cycles", "n_cycles", "hidden_size",
                     "num_layers", "num_heads", "halt_max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        for name, least in (("puzzle_emb_ndim", 0), ("puzzle_emb_len", 0), ("mlp_multiple", 1),
                            ("progressive_steps", 0), ("auxiliary_classes", 0), ("auxiliary_front_speed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"`{name}` must be an integer of at least {least}"
                                 f"{' (0 disables it)' if name == 'puzzle_emb_ndim' else ''}, got {value!r}")
        if self.auxiliary_front_speed and not self.auxiliary_classes:
            raise ValueError("`auxiliary_front_speed` schedules the auxiliary target: it needs `auxiliary_classes`")
        prefix = self.puzzle_emb_len or -(-self.puzzle_emb_ndim // self.hidden_size)
        if self.puzzle_emb_ndim > prefix * self.hidden_size or (self.puzzle_emb_len and not self.puzzle_emb_ndim):
            raise ValueError(f"`puzzle_emb_len` {self.puzzle_emb_len} positions of width {self.hidden_size} cannot "
                             f"hold a puzzle embedding of width {self.puzzle_emb_ndim}")
        for name, allowed in (("q_head_input", Q_HEAD_INPUTS), ("mlp_mixer_norm", MLP_MIXER_NORMS), ("mixer", MIXERS),
                              ("recurrence", RECURRENCES), ("loss_type", LOSS_TYPES),
                              ("forward_dtype", FORWARD_DTYPES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size <= 0):
            raise ValueError(f"`batch_size` must be a positive integer or None, got {self.batch_size!r}")
        for name, test, what in (("expansion", lambda v: v > 0, "positive"), ("rms_norm_eps", lambda v: v > 0,
                                 "positive"), ("rope_theta", lambda v: v > 0, "positive"),
                                 ("halt_exploration_prob", lambda v: 0 <= v <= 1, "in [0, 1]"),
                                 ("q_loss_weight", lambda v: v >= 0, "non-negative"),
                                 ("auxiliary_loss_weight", lambda v: v >= 0, "non-negative"),
                                 ("gate_bias_init", lambda v: True, "")):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"`{name}` must be a finite number, got {getattr(self, name)!r}")
            if not test(value):
                raise ValueError(f"`{name}` must be {what}, got {getattr(self, name)!r}")
        if self.mixer == "attention" and self.hidden_size % self.num_heads:
            raise ValueError(f"`num_heads` ({self.num_heads}) must divide `hidden_size` ({self.hidden_size})")
        if self.mixer == "attention" and (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"`hidden_size // num_heads` must be even for rotary positions, got "
                             f"{self.hidden_size // self.num_heads}")
        if self.conv_max and self.mixer != "conv":
            raise ValueError(f"`conv_max` adds a neighbourhood maximum to the conv mixer; the mixer is {self.mixer!r}")
        if self.conv_neighbours not in (4, 8):
            raise ValueError(f"`conv_neighbours` must be 4 or 8, got {self.conv_neighbours!r}")
        if self.conv_neighbours != 8 and self.mixer != "conv":
            raise ValueError(f"`conv_neighbours` chooses the conv mixer's neighbours; the mixer is {self.mixer!r}")
        if self.mixer == "conv" and math.isqrt(self.seq_len) ** 2 != self.seq_len:
            raise ValueError(f"the conv mixer reads square grids: `seq_len` must be a square, got {self.seq_len}")

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
    def total_len(self) -> int:
        return self.seq_len + self.puzzle_emb_len


__all__ = ["LSTMTRMConfig"]
