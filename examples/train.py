"""Train LSTM-TRM on Sudoku puzzles generated on the fly: the package's main job.

    accelerate launch examples/train.py                    # 6x6 CPU preset: about 15 minutes on a 2-core CPU
    accelerate launch examples/train.py --grid_size 4      # about a minute
    accelerate launch examples/train.py --grid_size 9      # the design's size (512 hidden, bf16): for a GPU

Every `TrainingArguments` flag is accepted and overrides the preset (for example `--max_steps`,
`--learning_rate`, `--per_device_train_batch_size`, `--resume_from_checkpoint`). Works under `accelerate launch`
(one or several processes) and plain `python`. The output folder holds the EMA model (safetensors, config, code
files for `trust_remote_code`), the grid tokenizer, a model card, `eval_results.json` and `training_curves.png`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# examples/evaluate.py shares its name with the `evaluate` library: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
from transformers import HfArgumentParser, TrainerCallback, TrainingArguments, set_seed

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMModel
from modeling_lstm_trm.sudoku import (
    DEFAULT_GIVENS,
    SudokuDataset,
    box_for_size,
    evaluate_model,
    solve_file,
    train_test_split,
)
from modeling_lstm_trm.tokenization import build_grid_tokenizer
from modeling_lstm_trm.trainer import StatefulTrainer

SHARED_SUDOKU = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sudoku"

# Presets by grid size: model settings, then TrainingArguments defaults. Flags on the command line win.
PRESETS = {
    4: dict(model=dict(hidden_size=32, num_layers=2, T_cycles=2, n_cycles=2, halt_max_steps=6, num_heads=2,
                       forward_dtype="float32"),
            data=dict(train_puzzles=1000, max_minutes=None),
            training=dict(max_steps=700, per_device_train_batch_size=64, learning_rate=3e-3, warmup_steps=50,
                          weight_decay=0.1, adam_beta2=0.95, eval_steps=350, logging_steps=50, save_steps=350)),
    6: dict(model=dict(hidden_size=64, num_layers=2, T_cycles=3, n_cycles=4, halt_max_steps=8, num_heads=4,
                       forward_dtype="bfloat16"),
            data=dict(train_puzzles=3000, max_minutes=13.0),
            training=dict(max_steps=20000, per_device_train_batch_size=64, learning_rate=2e-3, warmup_steps=200,
                          weight_decay=0.1, adam_beta2=0.95, eval_steps=1000, logging_steps=100, save_steps=1000)),
    9: dict(model=dict(hidden_size=512, num_layers=2, T_cycles=3, n_cycles=6, halt_max_steps=16, num_heads=8,
                       forward_dtype="bfloat16", puzzle_emb_ndim=512),
            data=dict(train_puzzles=20000, max_minutes=None),
            training=dict(max_steps=50000, per_device_train_batch_size=256, learning_rate=1e-4, warmup_steps=2000,
                          weight_decay=1.0, adam_beta2=0.95, eval_steps=2500, logging_steps=100, save_steps=2500)),
}


@dataclass
class SudokuArguments:
    task: str = field(default="sudoku", metadata={"help": "What to train: sudoku (LSTM-TRM)."})
    grid_size: int = field(default=6, metadata={"help": "4, 6 or 9: picks the preset."})
    recipe: int | None = field(default=None, metadata={
        "help": "Train with another grid size's preset (e.g. --grid_size 9 --recipe 6: the 6x6 CPU recipe on 9x9)."})
    givens: int | None = field(default=None, metadata={"help": "Filled cells per puzzle (default 6 / 14 / 30)."})
    train_puzzles: int | None = field(default=None, metadata={"help": "Base puzzles; augmented on the fly."})
    eval_puzzles: int = field(default=512, metadata={"help": "Held-out generated puzzles for evaluation."})
    eval_files: list[str] = field(default_factory=list, metadata={
        "help": "Puzzle files to evaluate on at the end (default: ../shared/data/sudoku/*.txt of this grid size; "
                "`none` for none)."})
    max_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes (the 6x6 preset stops at 13 so the job fits in 15)."})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    puzzle_emb_lr: float | None = field(default=None, metadata={"help": "Learning rate of the puzzle embeddings."})
    puzzle_emb_weight_decay: float | None = field(default=None, metadata={"help": "Their weight decay."})
    num_threads: int | None = field(default=None, metadata={
        "help": "PyTorch CPU threads per process (default: this machine's cores divided among its processes; "
                "`accelerate launch` without a config would otherwise leave each process one thread)."})


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
    mixer: str | None = field(default=None, metadata={"help": "mlp (default) or attention"})
    forward_dtype: str | None = field(default=None, metadata={"help": "bfloat16 or float32"})
    halt_exploration_prob: float | None = None


class TimeBudget(TrainerCallback):
    """Stops training once the wall-clock budget is spent (then the job evaluates and saves as usual)."""

    def __init__(self, minutes: float):
        self.seconds, self.start = minutes * 60, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True


def parse(argv: list[str] | None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((SudokuArguments, ModelArguments, TrainingArguments))
    grid_size = recipe = None
    for i, arg in enumerate(argv):
        for name in ("grid_size", "recipe"):
            if arg == f"--{name}" and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(f"--{name}="):
                value = arg.split("=", 1)[1]
            else:
                continue
            if not value.isdigit() or int(value) not in PRESETS:
                parser.error(f"--{name} must be one of {sorted(PRESETS)}, got {value}")
            if name == "grid_size":
                grid_size = int(value)
            else:
                recipe = int(value)
    grid_size = grid_size or SudokuArguments.grid_size
    preset = PRESETS[recipe or grid_size]
    parser.set_defaults(
        output_dir=f"outputs/lstm-trm-sudoku-{grid_size}x{grid_size}", eval_strategy="steps", save_strategy="steps",
        save_total_limit=2, dataloader_drop_last=True, report_to="none", lr_scheduler_type="constant_with_warmup",
        max_grad_norm=1.0, seed=0, **preset["training"], **preset["data"],
    )
    sudoku_args, model_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if sudoku_args.task != "sudoku":
        parser.error(f"--task {sudoku_args.task!r} is not available; this script trains: sudoku")
    model_settings = {**preset["model"], **{k: v for k, v in vars(model_args).items() if v is not None}}
    return sudoku_args, model_settings, training_args


def default_eval_files(size: int) -> list[Path]:
    if not SHARED_SUDOKU.is_dir():
        return []
    return sorted(p for p in SHARED_SUDOKU.glob("*.txt") if _puzzle_size(p) == size)


def _puzzle_size(path: Path) -> int | None:
    for line in path.read_text().splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            return round(len(text) ** 0.5)
    return None


def plot_training(log_history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    train_exact = [(e["step"], e["train_exact_accuracy"]) for e in log_history if "train_exact_accuracy" in e]
    evals = [(e["step"], e["eval_exact_accuracy"]) for e in log_history if "eval_exact_accuracy" in e]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        left.plot(*zip(*train), label="training loss")
    left.set_xlabel("optimizer step (= supervision step)")
    left.set_ylabel("loss")
    left.set_yscale("log")
    left.legend()
    if train_exact:
        right.plot(*zip(*train_exact), label="training rows that halted", alpha=0.6)
    if evals:
        right.plot(*zip(*evals), "o-", label="held-out (EMA)")
    right.set_xlabel("optimizer step")
    right.set_ylabel("exact-puzzle accuracy")
    right.set_ylim(0, 1.02)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    sudoku_args, model_settings, training_args = parse(argv)
    set_seed(training_args.seed)
    if training_args.device.type == "cpu":
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(sudoku_args.num_threads or max(1, (os.cpu_count() or 1) // local_processes))
    size = sudoku_args.grid_size
    box = box_for_size(size)
    givens = sudoku_args.givens or DEFAULT_GIVENS[size]
    started = time.monotonic()
    is_main = training_args.process_index == 0

    if is_main:
        print(f"Generating {sudoku_args.train_puzzles} training and {sudoku_args.eval_puzzles} held-out "
              f"{size}x{size} puzzles with {givens} givens...", flush=True)
    train_base, held_out = train_test_split(sudoku_args.train_puzzles, sudoku_args.eval_puzzles, box, givens,
                                            seed=training_args.seed)

    config = LSTMTRMConfig(vocab_size=size + 1, seq_len=size * size, num_puzzle_identifiers=1,
                           puzzle_emb_ndim=model_settings.pop("puzzle_emb_ndim", 0),
                           batch_size=training_args.per_device_train_batch_size * training_args.world_size,
                           **model_settings)
    model = LSTMTRMModel(config)
    if is_main:
        params = sum(p.numel() for p in model.parameters())
        print(f"LSTM-TRM ({config.recurrence} recurrence, {config.mixer} mixer): {params / 1e6:.2f}M parameters, "
              f"T={config.T_cycles}, n={config.n_cycles}, halt_max_steps={config.halt_max_steps}", flush=True)

    train_dataset = SudokuDataset(
        train_base, length=training_args.max_steps * training_args.per_device_train_batch_size
        * training_args.world_size, seed=training_args.seed)
    overrides = {}
    if config.puzzle_emb_ndim and (sudoku_args.puzzle_emb_lr is not None
                                   or sudoku_args.puzzle_emb_weight_decay is not None):
        overrides["puzzle_emb."] = {k: v for k, v in (("lr", sudoku_args.puzzle_emb_lr),
                                                      ("weight_decay", sudoku_args.puzzle_emb_weight_decay))
                                    if v is not None}
    callbacks = [TimeBudget(sudoku_args.max_minutes)] if sudoku_args.max_minutes else []
    trainer = StatefulTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=SudokuDataset(held_out, length=len(held_out), augment=False),
        ema_decay=sudoku_args.ema_decay or None,
        evaluate_fn=lambda m, dataset: {**evaluate_model(m, dataset.base),
                                        "minutes": round((time.monotonic() - started) / 60, 2)},
        param_group_overrides=overrides,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)

    results = {"held_out": evaluate_on(trainer, held_out)}
    files = sudoku_args.eval_files or default_eval_files(size)
    for path in [Path(p) for p in files if p != "none"]:
        results[path.stem] = evaluate_on(trainer, solve_file(path))
    results["train_minutes"] = round((time.monotonic() - started) / 60, 2)
    results["train_steps"] = trainer.state.global_step

    output_dir = Path(training_args.output_dir)
    trainer.save_model(str(output_dir))
    if is_main:
        build_grid_tokenizer(size).save_pretrained(output_dir)
        (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
        plot_training(trainer.state.log_history, output_dir / "training_curves.png")
        write_model_card(output_dir, config, training_args, sudoku_args, givens, results)
        held = results["held_out"]
        print(f"\nHeld-out {size}x{size} ({held['puzzles']} puzzles, {givens} givens): "
              f"exact {held['exact_accuracy']:.3f} at the model's halting step (mean {held['mean_steps']:.2f}), "
              f"{held['exact_accuracy_at_max_steps']:.3f} after {config.halt_max_steps} steps")
        for name, scores in results.items():
            if isinstance(scores, dict) and name != "held_out":
                print(f"{name}: exact {scores['exact_accuracy']:.3f}, blank cells {scores['cell_accuracy']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)")
        example = "".join(map(str, held_out.puzzles[0].reshape(-1))).replace("0", ".")
        print(f"Solve a held-out puzzle: python examples/solve.py --model {output_dir} --trace {example}", flush=True)
    return results


def evaluate_on(trainer: StatefulTrainer, data) -> dict:
    model = trainer.accelerator.unwrap_model(trainer.model)
    with trainer.ema.applied(model) if trainer.ema is not None else contextlib.nullcontext():
        return evaluate_model(model, data)


def write_model_card(output_dir: Path, config, training_args, sudoku_args, givens, results) -> None:
    from huggingface_hub import ModelCard, ModelCardData

    held = results["held_out"]
    size = sudoku_args.grid_size
    data = ModelCardData(
        library_name="transformers", license="apache-2.0", tags=["lstm-trm", "recursive-reasoning", "sudoku"],
        model_name=output_dir.name,
    )
    text = f"""---
{data.to_yaml()}
---

# {output_dir.name}

LSTM-TRM trained on {size}x{size} Sudoku generated on the fly ({givens} givens per puzzle, with digit, row, band,
column and stack permutations as augmentation).

Load it with `AutoModel.from_pretrained(path, trust_remote_code=True)` and call `model.solve(puzzles)`.

| setting | value |
|---|---|
| recurrence / mixer | {config.recurrence} / {config.mixer} |
| hidden size, layers | {config.hidden_size}, {config.num_layers} |
| T cycles, n cycles, halt_max_steps | {config.T_cycles}, {config.n_cycles}, {config.halt_max_steps} |
| optimizer steps, batch, learning rate | {results['train_steps']}, {training_args.per_device_train_batch_size} x \
{training_args.world_size}, {training_args.learning_rate} |

| evaluation | exact accuracy | blank-cell accuracy | mean halting step |
|---|---|---|---|
| held-out generated ({held['puzzles']}) | {held['exact_accuracy']:.4f} | {held['cell_accuracy']:.4f} | \
{held['mean_steps']:.2f} |
"""
    for name, scores in results.items():
        if isinstance(scores, dict) and name != "held_out":
            text += (f"| {name} ({scores['puzzles']}) | {scores['exact_accuracy']:.4f} | "
                     f"{scores['cell_accuracy']:.4f} | {scores['mean_steps']:.2f} |\n")
    ModelCard(text).save(output_dir / "README.md")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
    sys.exit(0)
