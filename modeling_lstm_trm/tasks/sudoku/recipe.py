"""Training recipe of LSTM-TRM on generated Sudoku (`examples/train.py`, the package's main job): its flags, its
presets (`presets/<n>x<n>.json`, chosen by --grid_size or --recipe), and the run."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments, set_seed

from ...tokenization import build_grid_tokenizer
from ...training import StatefulTrainer
from ...training.runs import Panel, check_max_minutes, finish_run, set_threads
from ...training.safety import after_training
from ..lstm_trm_recipe import (
    ModelArguments,
    build_lstm_trm,
    check_distinct_files,
    optimizer_with_puzzle_embedding_group,
    read_preset,
    train_and_save,
)
from .hard_puzzles import generate_hard_puzzles
from .puzzles import (
    BOXES,
    DEFAULT_GIVENS,
    SudokuDataset,
    SudokuSet,
    box_for_size,
    drop_equivalent,
    evaluate_model,
    parse_puzzles,
    solve_file,
    train_test_split,
)
from .sudoku_extreme import HUB_DATASET, load_csv_splits, load_trm_folder

PRESETS = Path(__file__).parent / "presets"
EVAL_SUBSAMPLE_SEED = 20251  # one fixed test subset whatever --seed the training uses
SHARED_SUDOKU = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "sudoku"  # beside a checkout


@dataclass
class SudokuArguments:
    grid_size: int | None = field(default=None, metadata={
        "help": "4, 6 or 9: picks the preset (presets/<n>x<n>.json); default 6, or 9 with a dataset or --recipe hard."})
    recipe: str | None = field(default=None, metadata={
        "aliases": ["--preset"],
        "help": "Train with another preset: a grid size (e.g. --grid_size 9 --recipe 6: the 6x6 CPU recipe on 9x9) "
                "or `hard` (9x9 minimal puzzles rated by backtracks: generated, or from the dataset flags)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": f"Sudoku-Extreme-shaped data: a Hub dataset (e.g. {HUB_DATASET}) or a local folder holding "
                "train.csv and test.csv (header source,question,answer,rating)."})
    train_file: str | None = field(default=None, metadata={"help": "A training CSV file of that shape."})
    test_file: str | None = field(default=None, metadata={"help": "A test CSV file of that shape."})
    data_dir: str | None = field(default=None, metadata={
        "help": "A folder built by TRM's build_sudoku_dataset.py ({train,test}/all__inputs.npy, ...)."})
    subsample_size: int | None = field(default=None, metadata={
        "help": "Train on this many puzzles of the training split, drawn with --seed (TRM: 1000)."})
    min_rating: int | None = field(default=None, metadata={
        "help": "Only puzzles rated at least this (backtracks), in both splits; with --recipe hard and no dataset, "
                "the rating of the puzzles generated."})
    eval_subsample: int | None = field(default=None, metadata={
        "help": "Evaluate on this many puzzles of the test split, drawn with a fixed seed (default: all of it)."})
    drop_invalid: bool = field(default=False, metadata={
        "help": "Drop malformed dataset rows and count them, instead of stopping at the first."})
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

    def uses_dataset(self) -> bool:
        return any((self.dataset_name, self.train_file, self.test_file, self.data_dir))

    @property
    def size(self) -> int:
        """The grid size: --grid_size, else 9 for a dataset or the hard recipe, else 6."""
        if self.grid_size is not None:
            return self.grid_size
        return 9 if self.uses_dataset() or self.recipe == "hard" else 6


ARGUMENTS = (SudokuArguments, ModelArguments)


def preset_defaults(sudoku_args: SudokuArguments, model_args: ModelArguments) -> dict:
    if sudoku_args.grid_size is not None and sudoku_args.grid_size not in BOXES:
        raise ValueError(f"--grid_size must be one of {sorted(BOXES)}, got {sudoku_args.grid_size}")
    recipes = [str(n) for n in BOXES] + ["hard"]
    if sudoku_args.recipe is not None and sudoku_args.recipe not in recipes:
        raise ValueError(f"--recipe must be one of {', '.join(recipes)}, got {sudoku_args.recipe}")
    size = sudoku_args.size
    recipe = sudoku_args.recipe or str(size)
    name = "hard" if recipe == "hard" else f"{size}x{size}"
    return read_preset(PRESETS / (f"{recipe}x{recipe}.json" if recipe.isdigit() else f"{recipe}.json"),
                       f"outputs/lstm-trm-sudoku-{name}")


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


def check(sudoku_args: SudokuArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    check_max_minutes(sudoku_args.max_minutes)
    for flag in ("train_puzzles", "eval_puzzles"):
        if getattr(sudoku_args, flag) is not None and getattr(sudoku_args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(sudoku_args, flag)}")
    filed_as: dict[str, str] = {}
    for name in sudoku_args.eval_files:
        if name == "none":
            continue
        if not Path(name).is_file():
            raise ValueError(f"--eval_files: no such file: {name}")
        if parse_puzzles(name).shape[-1] != sudoku_args.size:  # every line, now rather than after training
            raise ValueError(f"--eval_files: {name} does not hold {sudoku_args.size}x{sudoku_args.size} "
                             "puzzles (see --grid_size)")
        key = Path(name).stem  # the file's results are filed under its name
        if key in RESULT_KEYS or key in filed_as:
            taken = f"the run's own '{key}' result" if key in RESULT_KEYS else filed_as[key]
            raise ValueError(f"--eval_files: {name} would be reported as '{key}', like {taken}: rename the file")
        filed_as[key] = name
    check_data_flags(sudoku_args)


def check_data_flags(args: SudokuArguments) -> None:
    for flag in ("subsample_size", "eval_subsample"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    sources = [flag for flag in ("dataset_name", "data_dir") if getattr(args, flag)]
    if args.train_file or args.test_file:
        sources.append("train_file")
        if not (args.train_file and args.test_file):
            raise ValueError("--train_file and --test_file go together (a training and a test CSV file)")
    if len(sources) > 1:
        raise ValueError(f"give one data source: --{' or --'.join(sources)}")
    if args.uses_dataset() and args.size != 9:
        raise ValueError(f"Sudoku-Extreme data is 9x9: --grid_size {args.grid_size} does not fit")
    if args.recipe == "hard" and args.size != 9:
        raise ValueError(f"--recipe hard is 9x9: --grid_size {args.grid_size} does not fit")
    if args.data_dir and args.min_rating is not None:
        raise ValueError("--min_rating needs the ratings of a CSV dataset; a TRM folder (--data_dir) has none")
    for flag in ("train_file", "test_file", "data_dir"):
        path = getattr(args, flag)
        if path and not (Path(path).is_dir() if flag == "data_dir" else Path(path).is_file()):
            raise ValueError(f"--{flag}: no such {'folder' if flag == 'data_dir' else 'file'}: {path}")
    check_distinct_files(args.train_file, args.test_file)
    if not args.uses_dataset() and (args.subsample_size or args.eval_subsample or args.drop_invalid):
        raise ValueError("--subsample_size, --eval_subsample and --drop_invalid select rows of a dataset "
                         "(--dataset_name, --train_file/--test_file or --data_dir); generated puzzles are set by "
                         "--train_puzzles and --eval_puzzles")
    if args.min_rating is not None and not args.uses_dataset() and args.recipe != "hard":
        raise ValueError("--min_rating selects dataset rows or, with --recipe hard, the puzzles generated")


def load_splits(args: SudokuArguments, seed: int, is_main: bool) -> tuple[SudokuSet, SudokuSet, dict]:
    """The training puzzles, the held-out puzzles, and what was read: from the dataset flags, generated minimal
    puzzles (--recipe hard), or generated puzzles with a fixed number of givens."""
    size = args.size
    box = box_for_size(size)
    if args.data_dir:
        train = load_trm_folder(args.data_dir, "train", args.subsample_size, seed)
        test = load_trm_folder(args.data_dir, "test", args.eval_subsample, EVAL_SUBSAMPLE_SEED)
    elif args.uses_dataset():
        if args.dataset_name and Path(args.dataset_name).is_dir():
            files, hub = {s: str(Path(args.dataset_name) / f"{s}.csv") for s in ("train", "test")}, None
        elif args.dataset_name:
            files, hub = {"train": "train.csv", "test": "test.csv"}, args.dataset_name
        else:
            files, hub = {"train": args.train_file, "test": args.test_file}, None
        splits = load_csv_splits(files, hub, min_rating=args.min_rating, drop_invalid=args.drop_invalid,
                                 subsample_size={"train": args.subsample_size, "test": args.eval_subsample},
                                 seed={"train": seed, "test": EVAL_SUBSAMPLE_SEED})
        train, test = splits["train"], splits["test"]
    elif args.recipe == "hard":
        rating = args.min_rating or 0
        if is_main:
            print(f"Generating {args.train_puzzles} training and {args.eval_puzzles} held-out minimal 9x9 puzzles "
                  f"rated at least {rating} (examples/make_dataset.py writes such sets to a file once)...", flush=True)
        workers = os.cpu_count() or 1
        made = [generate_hard_puzzles(n, rating, seed=seed + offset, num_workers=workers, progress=is_main)
                for n, offset in ((args.train_puzzles, 0), (args.eval_puzzles, 1_000_003))]
        train_set, test_set = (SudokuSet(p, s, box, ratings=r) for p, s, r in made)
        return train_set, drop_equivalent(test_set, train_set), {"source": f"generated minimal, rating >= {rating}"}
    else:
        givens = args.givens or DEFAULT_GIVENS[size]
        if is_main:
            print(f"Generating {args.train_puzzles} training and {args.eval_puzzles} held-out {size}x{size} puzzles "
                  f"with {givens} givens...", flush=True)
        train_set, test_set = train_test_split(args.train_puzzles, args.eval_puzzles, box, givens, seed=seed)
        return train_set, test_set, {"source": f"generated, {givens} givens"}
    source = args.data_dir or args.dataset_name or f"{args.train_file}, {args.test_file}"
    info = {"source": source, **{f"{name}_{key}": value for name, split in (("train", train), ("test", test))
                                 for key, value in vars(split).items() if key != "data"}}
    if is_main:
        print(f"Data from {source}: {len(train.data)} training puzzles (of {train.rows} rows), {len(test.data)} test "
              f"puzzles (of {test.rows})" + (f"; dropped as invalid: {train.dropped_invalid} + {test.dropped_invalid}"
                                              if args.drop_invalid else ""), flush=True)
    return train.data, test.data, info


def run(sudoku_args: SudokuArguments, model_args: ModelArguments, training_args: TrainingArguments) -> dict:
    set_seed(training_args.seed)
    set_threads(training_args, sudoku_args.num_threads)
    size = sudoku_args.size
    started = time.monotonic()
    is_main = training_args.process_index == 0
    train_base, held_out, data_info = load_splits(sudoku_args, training_args.seed, is_main)

    model = build_lstm_trm(model_args, training_args, vocab_size=size + 1, seq_len=size * size, is_main=is_main)
    config = model.config
    optimizer = None
    if config.puzzle_emb_ndim and (sudoku_args.puzzle_emb_lr is not None
                                   or sudoku_args.puzzle_emb_weight_decay is not None):
        optimizer = optimizer_with_puzzle_embedding_group(model, training_args, sudoku_args.puzzle_emb_lr,
                                                          sudoku_args.puzzle_emb_weight_decay)
    train_dataset = SudokuDataset(
        train_base, length=training_args.max_steps * training_args.per_device_train_batch_size
        * training_args.world_size, seed=training_args.seed)
    trainer = train_and_save(
        model, training_args, train_dataset=train_dataset,
        eval_dataset=SudokuDataset(held_out, length=len(held_out), augment=False),
        evaluate_fn=lambda m, dataset: {**evaluate_model(m, dataset.base),
                                        "minutes": round((time.monotonic() - started) / 60, 2)},
        tokenizer=build_grid_tokenizer(size), ema_decay=sudoku_args.ema_decay, max_minutes=sudoku_args.max_minutes,
        optimizer=optimizer)
    output_dir = Path(training_args.output_dir)

    with after_training("evaluation", output_dir):
        results = {"held_out": evaluate_on(trainer, held_out)}
        files = sudoku_args.eval_files or default_eval_files(size)
        for path in [Path(p) for p in files if p != "none"]:
            results[path.stem] = evaluate_on(trainer, solve_file(path))
    results["train_minutes"] = round((time.monotonic() - started) / 60, 2)
    results["train_steps"] = trainer.state.global_step
    if is_main:
        example = "".join(map(str, held_out.puzzles[0].reshape(-1))).replace("0", ".")
        run_info = dict(task="sudoku", data=data_info, train_puzzles=len(train_base),
                        ema_decay=sudoku_args.ema_decay, example_puzzle=example)
        with after_training("writing the results, the plot and the model card", output_dir):
            finish_run(trainer, results, run_info, [
                Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("exact-puzzle accuracy", {"train_exact_accuracy": "training rows that halted",
                                                "eval_exact_accuracy": "held-out (EMA)"},
                      ylim=(0, 1.02), markers={"eval_exact_accuracy"})])
        held = results["held_out"]
        print(f"\nHeld-out {size}x{size} ({held['puzzles']} puzzles, {data_info['source']}): "
              f"exact {held['exact_accuracy']:.3f} after {config.halt_max_steps} steps (TRM's convention), "
              f"{held['exact_accuracy_at_q_halt']:.3f} at the Q head's halt (mean step {held['mean_steps']:.2f})")
        for name, scores in results.items():
            if isinstance(scores, dict) and name != "held_out":
                print(f"{name}: exact {scores['exact_accuracy']:.3f}, blank cells {scores['cell_accuracy']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)")
        print(f"Solve a held-out puzzle: python examples/solve.py --model {output_dir} --trace {example}", flush=True)
    return results


RESULT_KEYS = ("held_out", "train_minutes", "train_steps")  # what a run reports besides its --eval_files


def evaluate_on(trainer: StatefulTrainer, data) -> dict:
    with trainer.ema_weights() as model:
        return evaluate_model(model, data)
