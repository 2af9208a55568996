"""What every LSTM-TRM task shares (Sudoku, mazes, ARC, ...): the model's flags, building the model from them, the
presets, and AdamW over the model's own parameter groups. Not a task: task modules import it, never each other."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainingArguments

from ..models.lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from ..training.compiling import AUTO_MIN_STEPS, COMPILE_MODES, compile_recursion
from ..training.runs import resolve_dtype
from ..training.sparse_rows import AdamWWithSparseRows

MAX_PROGRESSIVE_STEPS = 256  # progressive training's deepest start: a batch may run this many extra steps


@dataclass
class ModelArguments:
    hidden_size: int | None = None
    num_layers: int | None = None
    T_cycles: int | None = None
    n_cycles: int | None = None
    halt_max_steps: int | None = None
    num_heads: int | None = None
    puzzle_emb_ndim: int | None = None
    expansion: float | None = None
    recurrence: str | None = field(default=None, metadata={"help": "lstm (default) or trm"})
    mixer: str | None = field(default=None, metadata={"help": "mlp (default), attention or conv (any square grid)"})
    conv_max: bool = field(default=False, metadata={
        "help": "conv mixer: also each channel's maximum over the cell and its 4 neighbours (a wave one cell a block)"})
    conv_neighbours: int | None = field(default=None, metadata={
        "help": "conv mixer: the neighbours each cell reads, 8 (default) or 4 (no diagonal taps: a maze step's cross)"})
    forward_dtype: str | None = field(default=None, metadata={
        "help": "bfloat16, float32, or auto (bfloat16 where the hardware runs it natively, else float32)"})
    halt_exploration_prob: float | None = None
    # TRM's own conventions, where they differ from ours (README, "TRM parity"); unset keeps ours.
    puzzle_emb_len: int | None = field(default=None, metadata={"help": "puzzle-embedding positions (TRM: 16)"})
    mlp_multiple: int | None = field(default=None, metadata={"help": "SwiGLU width multiple (32; TRM: 256)"})
    absolute_positions: bool | None = field(default=None, metadata={
        "help": "learned absolute positions (default: with attention; TRM: no)"})
    q_head_input: str | None = field(default=None, metadata={"help": "mean (default) or first (TRM)"})
    mlp_mixer_norm: str | None = field(default=None, metadata={"help": "channels (default) or positions (TRM)"})
    progressive_steps: int | None = field(default=None, metadata={
        "help": f"progressive training: new puzzles start from 0..N supervision steps run without gradients (0: off; "
                f"at most {MAX_PROGRESSIVE_STEPS})"})

    compile_recursion: str = field(default="auto", metadata={
        "help": f"torch.compile the recursion's two updates: {', '.join(COMPILE_MODES)} (auto: where a compiler is "
                f"available, a GPU or a C++ compiler for the CPU, for runs of {AUTO_MIN_STEPS}+ steps; the model and "
                "its results are the same)"})

    def check(self) -> None:
        """Every model setting the flags choose, validated before any data is made (the config's own rules, the
        preset's defaults applied): ValueError naming the flag. The data's settings are checked with the model."""
        try:
            LSTMTRMConfig(vocab_size=1, seq_len=1, **self.config_settings())  # a 1x1 grid: any mixer reads it
        except ValueError as error:
            raise ValueError(re.sub(r"`(\w+)`", r"--\1", str(error))) from None

    def config_settings(self) -> dict:
        """The config's settings the flags set (unset ones keep the config's defaults, but no puzzle embedding unless
        asked), the dtype resolved."""
        settings = {k: v for k, v in vars(self).items() if v is not None and k != "compile_recursion"}
        settings["forward_dtype"] = resolve_dtype(settings.get("forward_dtype", "auto"))
        settings.setdefault("puzzle_emb_ndim", 0)
        return settings

    def __post_init__(self):
        if self.compile_recursion not in COMPILE_MODES:
            raise ValueError(f"--compile_recursion must be one of {', '.join(COMPILE_MODES)}, got "
                             f"{self.compile_recursion}")
        if self.progressive_steps is not None and not 0 <= self.progressive_steps <= MAX_PROGRESSIVE_STEPS:
            raise ValueError(f"--progressive_steps must be in 0..{MAX_PROGRESSIVE_STEPS} (each new puzzle may first "
                             f"run that many supervision steps), got {self.progressive_steps}")


def read_preset(path: Path, output_dir: str) -> dict:
    """A preset file as flag defaults: its "_comment"-like keys dropped, an "auto" dtype resolved for this machine, and
    the run's default --output_dir."""
    preset = json.loads(Path(path).read_text())
    preset["forward_dtype"] = resolve_dtype(preset["forward_dtype"])
    return {"output_dir": output_dir, **{key: value for key, value in preset.items() if not key.startswith("_")}}


def named_preset(folder: Path, name: str, flag: str, output_dir: str) -> dict:
    """The preset `folder/<name>.json` as flag defaults (see `read_preset`); ValueError naming `flag` and the presets
    there for any other name."""
    names = sorted(path.stem for path in Path(folder).glob("*.json"))
    if name not in names:
        raise ValueError(f"{flag} must be one of {', '.join(names)}, got {name}")
    return read_preset(Path(folder) / f"{name}.json", output_dir)


def build_lstm_trm(model_args: ModelArguments, training_args: TrainingArguments, vocab_size: int, seq_len: int,
                   is_main: bool = True, task: str | None = None, **settings) -> LSTMTRMForPuzzleSolving:
    """A fresh model from the flags (unset ones take the config's defaults) and the settings the task and its data
    decide (`settings`: e.g. the number of puzzle identifiers), printing its size on the main process."""
    flags = model_args.config_settings()
    compile_mode = model_args.compile_recursion  # how it runs, not what the model is
    config = LSTMTRMConfig(vocab_size=vocab_size, seq_len=seq_len,
                           batch_size=training_args.per_device_train_batch_size * training_args.world_size,
                           task=task, **flags, **settings)
    model = LSTMTRMForPuzzleSolving(config)
    compiled = compile_recursion(model, compile_mode, training_args.device.type, steps=training_args.max_steps)
    if is_main:
        params = sum(p.numel() for p in model.parameters())
        print(f"LSTM-TRM ({config.recurrence} recurrence, {config.mixer} mixer): {params / 1e6:.2f}M parameters, "
              f"T={config.T_cycles}, n={config.n_cycles}, halt_max_steps={config.halt_max_steps}; recursion "
              f"{'compiled' if compiled else 'eager'} (--compile_recursion {compile_mode})", flush=True)
    return model


def build_optimizer(model: LSTMTRMForPuzzleSolving, args: TrainingArguments, puzzle_emb_lr: float | None = None,
                    puzzle_emb_weight_decay: float | None = None) -> torch.optim.Optimizer:
    """AdamW over the model's own parameter groups (`LSTMTRMForPuzzleSolving.optimizer_groups`); with a sparse
    puzzle embedding (ARC: one identifier per augmented task), its rows take TRM's sign update (`sparse_rows`)."""
    adamw = AdamWWithSparseRows if model.config.puzzle_emb_sparse else torch.optim.AdamW
    return adamw(model.optimizer_groups(args.weight_decay, puzzle_emb_lr, puzzle_emb_weight_decay),
                 lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
