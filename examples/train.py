"""Train LSTM-TRM on Sudoku puzzles generated on the fly (the package's main job), or the nested LM on text.

    accelerate launch examples/train.py                    # 6x6 CPU preset: about 15 minutes on a 2-core CPU
    accelerate launch examples/train.py --grid_size 4      # about a minute
    accelerate launch examples/train.py --grid_size 9      # the design's size (512 hidden, bf16): for a GPU
    accelerate launch examples/train.py --task lm --train_file input.txt --tokenizer char --output_dir out

Every `TrainingArguments` flag is accepted and overrides the preset (for example `--max_steps`,
`--learning_rate`, `--per_device_train_batch_size`, `--resume_from_checkpoint`). Works under `accelerate launch`
(one or several processes) and plain `python`. The output folder holds the EMA model (safetensors, config, code
files for `trust_remote_code`), the grid tokenizer, a model card, `eval_results.json` and `training_curves.png`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# examples/evaluate.py shares its name with the `evaluate` library: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch
from transformers import AutoTokenizer, HfArgumentParser, TrainerCallback, TrainingArguments, set_seed

from modeling_lstm_trm import (
    BoundaryAwareCollator,
    LSTMTRMConfig,
    LSTMTRMModel,
    MultiTimescaleOptimizer,
    NestedLSTMConfig,
    NestedLSTMForCausalLM,
)
from modeling_lstm_trm.hub import EVAL_FILE, RUN_FILE, HubError, build_model_card, check_repo_id, push_checkpoint
from modeling_lstm_trm.streams import TokenStreams, encode_corpus, load_text_documents
from modeling_lstm_trm.sudoku import (
    DEFAULT_GIVENS,
    SudokuDataset,
    box_for_size,
    evaluate_model,
    solve_file,
    train_test_split,
)
from modeling_lstm_trm.tokenization import TOKENIZER_KINDS, build_grid_tokenizer, build_text_tokenizer
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
    task: str = field(default="sudoku", metadata={
        "help": "What to train: sudoku (LSTM-TRM) or lm (the nested LM; `--task lm --help` lists its flags)."})
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

    def cosine_schedule(self, optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up over steps, then a cosine from the peak to 0 over the remaining wall-clock budget."""
        import math

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            if self.start is None:
                return 1.0
            done = min(1.0, (time.monotonic() - self.start) / self.seconds)
            return 0.5 * (1 + math.cos(math.pi * done))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True


def parse_sudoku(argv: list[str]):
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
        max_grad_norm=1.0, seed=0, **preset["training"], **preset["data"], **launcher_defaults(),
    )
    sudoku_args, model_args, training_args = parser.parse_args_into_dataclasses(args=argv)
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
    if train:
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


def launcher_defaults() -> dict:
    """A machine without GPU: no pinned memory, and `use_cpu`, without which Trainer neither sets up CPU data
    parallelism (gloo) for several processes (`accelerate launch --multi_gpu --num_processes 2`) nor accepts --bf16."""
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    return {"dataloader_pin_memory": False, "use_cpu": True}


def bf16_supported() -> bool:
    """bfloat16 autocast is fast here: a GPU with bf16, or a CPU with native bf16 (avx512_bf16 / AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def task_of(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
    return "sudoku"


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    tasks = {"sudoku": (parse_sudoku, train_sudoku), "lm": (parse_lm, train_lm)}
    task = task_of(argv)
    if task not in tasks:
        raise SystemExit(f"--task must be one of {', '.join(tasks)}, got {task!r}")
    parse, train = tasks[task]
    task_args, model_args, training_args = parse(argv)
    push_to = claim_push(training_args)
    results = train(task_args, model_args, training_args)
    if push_to and training_args.process_index == 0:
        url = push_checkpoint(training_args.output_dir, push_to, private=bool(training_args.hub_private_repo),
                              revision=training_args.hub_revision, token=training_args.hub_token)
        print(f"Pushed to the Hub: {url}", flush=True)
    return results


def claim_push(training_args: TrainingArguments) -> str | None:
    """`--push_to_hub --hub_model_id USER/NAME` uploads the finished folder once, as examples/push_to_hub.py does,
    instead of Trainer's pushes at every save; the name is checked now, not after training."""
    if not training_args.push_to_hub:
        return None
    if not training_args.hub_model_id:
        raise SystemExit("--push_to_hub needs --hub_model_id USER/NAME")
    try:
        check_repo_id(training_args.hub_model_id)
    except HubError as error:
        raise SystemExit(f"error: {error}") from None
    training_args.push_to_hub = False
    return training_args.hub_model_id


def set_threads(training_args: TrainingArguments, num_threads: int | None) -> None:
    if training_args.device.type == "cpu":
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(num_threads or max(1, (os.cpu_count() or 1) // local_processes))


def train_sudoku(sudoku_args: SudokuArguments, model_settings: dict, training_args: TrainingArguments) -> dict:
    set_seed(training_args.seed)
    set_threads(training_args, sudoku_args.num_threads)
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
        example = "".join(map(str, held_out.puzzles[0].reshape(-1))).replace("0", ".")
        run = dict(task="sudoku", givens=givens, train_puzzles=sudoku_args.train_puzzles,
                   ema_decay=sudoku_args.ema_decay, example_puzzle=example, **procedure(trainer, results))
        finish(trainer, results, run, plot_training)
        held = results["held_out"]
        print(f"\nHeld-out {size}x{size} ({held['puzzles']} puzzles, {givens} givens): "
              f"exact {held['exact_accuracy']:.3f} at the model's halting step (mean {held['mean_steps']:.2f}), "
              f"{held['exact_accuracy_at_max_steps']:.3f} after {config.halt_max_steps} steps")
        for name, scores in results.items():
            if isinstance(scores, dict) and name != "held_out":
                print(f"{name}: exact {scores['exact_accuracy']:.3f}, blank cells {scores['cell_accuracy']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)")
        print(f"Solve a held-out puzzle: python examples/solve.py --model {output_dir} --trace {example}", flush=True)
    return results


def evaluate_on(trainer: StatefulTrainer, data) -> dict:
    with trainer.ema_weights() as model:
        return evaluate_model(model, data)


# ----- the nested LM (--task lm) -------------------------------------------------------------------------------------

@dataclass
class LMArguments:
    task: str = field(default="lm", metadata={"help": "lm: the nested persistent-state LM."})
    train_file: str | None = field(default=None, metadata={"help": "A text file to train on."})
    validation_file: str | None = field(default=None, metadata={
        "help": "A text file to validate on (default: the last --validation_fraction of the training text)."})
    validation_fraction: float = field(default=0.1, metadata={
        "help": "Without a validation split, the last this fraction of the training text validates (0: none)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A Hub dataset (or a local dataset folder) instead of text files, e.g. wikitext."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "e.g. wikitext-2-raw-v1"})
    text_column: str = field(default="text", metadata={"help": "The dataset's text column."})
    document_boundary: str = field(default="auto", metadata={
        "help": "How documents are found (the state resets at each): auto, rows, none, wikitext, or a regex "
                "matching a document's first line."})
    tokenizer: str = field(default="char", metadata={"help": "char, word or bpe (trained on the training split)."})
    bpe_vocab_size: int = field(default=4096, metadata={"help": "Vocabulary size of the BPE tokenizer."})
    word_min_frequency: int = field(default=1, metadata={"help": "Rarer words become <unk> (word tokenizer)."})
    block_size: int = field(default=128, metadata={"help": "Chunk length T of truncated BPTT."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    schedule_by_time: bool = field(default=False, metadata={
        "help": "With --max_minutes: warm up for --warmup_steps, then decay the learning rate by a cosine over the "
                "wall-clock budget instead of over --max_steps (for equal-time comparisons; not exactly resumable)."})
    level_lr_scale: list[float] | None = field(default=None, metadata={
        "help": "Learning-rate multiplier of each level (default 1 for all)."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})
    carry_state: bool = field(default=True, metadata={
        "help": "Carry the LSTM state from batch to batch (false: start every batch fresh, an ablation)."})


@dataclass
class LMModelArguments:
    hidden_size: int | None = None
    num_lstm_layers: int | None = None
    level_update_every: list[int] | None = field(default=None, metadata={
        "help": "Update period of each level in optimizer steps, e.g. 1 16 256 (1 alone: a plain LSTM LM)."})
    intermediate_size: int | None = None
    dropout: float | None = None
    surprise_weighting: bool = field(default=False, metadata={
        "help": "Weight the slow levels' accumulated gradients by each step's surprise (see README)."})


def parse_lm(argv: list[str]):
    parser = HfArgumentParser((LMArguments, LMModelArguments, TrainingArguments))
    parser.set_defaults(
        output_dir="outputs/nested-lm", eval_strategy="steps", eval_steps=500, save_strategy="steps", save_steps=500,
        save_total_limit=2, logging_steps=50, dataloader_drop_last=True, train_sampling_strategy="sequential",
        report_to="none", learning_rate=6e-3, lr_scheduler_type="cosine", warmup_steps=50, weight_decay=0.1,
        bf16=bf16_supported(),
        max_grad_norm=1.0, num_train_epochs=3, per_device_train_batch_size=32, per_device_eval_batch_size=32,
        seed=0, **launcher_defaults(),
    )
    lm_args, model_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if lm_args.tokenizer not in TOKENIZER_KINDS:
        parser.error(f"--tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, got {lm_args.tokenizer!r}")
    if not (lm_args.train_file or lm_args.dataset_name):
        parser.error("--task lm needs --train_file FILE or --dataset_name NAME")
    for path in (lm_args.train_file, lm_args.validation_file):
        if path and not Path(path).is_file():
            parser.error(f"no such file: {path}")
    if lm_args.schedule_by_time and not lm_args.max_minutes:
        parser.error("--schedule_by_time needs --max_minutes")
    if training_args.train_sampling_strategy != "sequential" or not training_args.dataloader_drop_last:
        parser.error("the LM's streams need --train_sampling_strategy sequential and --dataloader_drop_last true")
    return lm_args, model_args, training_args


def prepare_tokenizer(lm_args: LMArguments, training_args: TrainingArguments, train_docs: list[str]):
    """The main process trains the tokenizer and saves it beside the model; the others load that very file."""
    output_dir = Path(training_args.output_dir)
    resuming = training_args.resume_from_checkpoint and (output_dir / "tokenizer.json").exists()
    with training_args.main_process_first(desc="tokenizer"):
        if training_args.process_index == 0 and not resuming:
            options = {"bpe": {"vocab_size": lm_args.bpe_vocab_size},
                       "word": {"min_frequency": lm_args.word_min_frequency}}.get(lm_args.tokenizer, {})
            build_text_tokenizer(lm_args.tokenizer, train_docs, **options).save_pretrained(output_dir)
        return AutoTokenizer.from_pretrained(output_dir)


def train_lm(lm_args: LMArguments, model_args: LMModelArguments, training_args: TrainingArguments) -> dict:
    set_seed(training_args.seed)
    set_threads(training_args, lm_args.num_threads)
    started = time.monotonic()
    is_main = training_args.process_index == 0
    train_docs, val_docs = load_text_documents(
        lm_args.train_file, lm_args.validation_file, lm_args.dataset_name, lm_args.dataset_config_name,
        lm_args.text_column, lm_args.document_boundary, lm_args.validation_fraction)
    tokenizer = prepare_tokenizer(lm_args, training_args, train_docs)

    world = training_args.world_size
    tokens, starts, chars_per_token = encode_corpus(train_docs, tokenizer)
    train_dataset = TokenStreams(tokens, starts, training_args.per_device_train_batch_size * world,
                                 lm_args.block_size, chars_per_token)
    eval_dataset = None
    if val_docs:
        tokens, starts, chars_per_token = encode_corpus(val_docs, tokenizer)
        eval_dataset = TokenStreams(tokens, starts, training_args.per_device_eval_batch_size * world,
                                    lm_args.block_size, chars_per_token)
    else:
        training_args.eval_strategy = "no"

    settings = {k: v for k, v in vars(model_args).items() if v is not None}
    config = NestedLSTMConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **settings)
    model = NestedLSTMForCausalLM(config)
    optimizer = MultiTimescaleOptimizer.from_model(
        model, torch.optim.AdamW, level_lr_scale=lm_args.level_lr_scale, lr=training_args.learning_rate,
        weight_decay=training_args.weight_decay, betas=(training_args.adam_beta1, training_args.adam_beta2),
        eps=training_args.adam_epsilon)
    budget = TimeBudget(lm_args.max_minutes) if lm_args.max_minutes else None
    scheduler = budget.cosine_schedule(optimizer, training_args.warmup_steps) if lm_args.schedule_by_time else None
    if is_main:
        print(f"Nested LM: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, levels updating every "
              f"{config.level_update_every} steps, surprise weighting {'on' if config.surprise_weighting else 'off'}; "
              f"{lm_args.tokenizer} tokenizer ({len(tokenizer)} tokens); {len(train_dataset.tokens):,} training tokens"
              f" in {train_dataset.num_streams} streams of {train_dataset.num_chunks} chunks of {lm_args.block_size}",
              flush=True)
    trainer = StatefulTrainer(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=BoundaryAwareCollator(), optimizers=(optimizer, scheduler), processing_class=tokenizer,
        callbacks=[budget] if budget else [],
        carry_state=lm_args.carry_state,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    results = {"train_steps": trainer.state.global_step,
               "train_minutes": round((time.monotonic() - started) / 60, 2)}
    if eval_dataset is not None:
        results.update({k: round(v, 6) for k, v in trainer.evaluate().items() if isinstance(v, float)})

    output_dir = Path(training_args.output_dir)
    trainer.save_model(str(output_dir))
    trainer.save_state()
    if is_main:
        source = lm_args.dataset_name or lm_args.train_file
        validation = lm_args.validation_file or ("validation split" if lm_args.dataset_name else
                                                 f"last {lm_args.validation_fraction:.0%} of the training text")
        run = dict(task="lm", dataset=source, dataset_is_hub=bool(lm_args.dataset_name),
                   dataset_config=lm_args.dataset_config_name, tokenizer=lm_args.tokenizer, validation=validation,
                   block_size=lm_args.block_size, example_prompt=train_docs[0][:40].split("\n")[0] or "\n",
                   **procedure(trainer, results))
        finish(trainer, results, run, plot_lm_training)
        summary = ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in results.items()
                            if k in ("eval_loss", "eval_perplexity", "eval_bits_per_character"))
        print(f"\nValidation: {summary or 'none'}. Model and tokenizer saved in {output_dir.resolve()} "
              f"({results['train_minutes']} minutes)", flush=True)
        print(f"Generate: python examples/generate.py --model {output_dir} --prompt 'Hello'", flush=True)
    return results


def procedure(trainer: StatefulTrainer, results: dict) -> dict:
    """How the run trained, for the model card."""
    args = trainer.args
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # inside accelerate's wrapper
    name = type(optimizer).__name__
    if hasattr(optimizer, "observe_surprise"):
        name += f" over {type(optimizer.optimizer).__name__}"
    return dict(steps=trainer.state.global_step, per_device_batch_size=args.per_device_train_batch_size,
                processes=args.world_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
                learning_rate=args.learning_rate, lr_scheduler=str(args.lr_scheduler_type).split(".")[-1].lower(),
                warmup_steps=args.warmup_steps, optimizer=name,
                train_minutes=results.get("train_minutes"), device=platform_description(args.device),
                hub_model_id=args.hub_model_id)


def platform_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def finish(trainer: StatefulTrainer, results: dict, run: dict, plot) -> None:
    """Main process: the run's JSON files, its plot and its model card beside the model."""
    output_dir = Path(trainer.args.output_dir)
    (output_dir / EVAL_FILE).write_text(json.dumps(results, indent=2))
    (output_dir / RUN_FILE).write_text(json.dumps(run, indent=2))
    plot(trainer.state.log_history, output_dir / "training_curves.png")
    build_model_card(output_dir, trainer.args.hub_model_id).save(output_dir / "README.md")


def plot_lm_training(log_history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, axis = plt.subplots(figsize=(6, 4))
    if train:
        axis.plot(*zip(*train), label="training loss")
    if evals:
        axis.plot(*zip(*evals), "o-", label="validation loss")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("cross-entropy (nats per token)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
    sys.exit(0)
