"""Training recipe of LSTM-TRM on mazes (`examples/train.py --task maze`): its flags, its presets (`presets/*.json`,
chosen by --recipe), and the run.

Data: TRM's Maze-Hard (`--dataset_name`, a Hub dataset or a folder with train.csv / test.csv; `--train_file` /
`--test_file`; `--data_dir`, a TRM prebuilt folder), or mazes generated on the fly (`--maze_size`,
`--min_path_length`), with a held-out set that no symmetry of a training maze can reproduce. Augmentation: the 8
rotations and reflections, on the fly. Scores: exact match and valid shortest path, after `halt_max_steps` (TRM's
convention) and at the Q head's halt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import TrainingArguments, set_seed

from ...tokenization import build_maze_tokenizer
from ...training.runs import Panel, check_max_minutes, finish_run, set_threads
from ...training.safety import after_training
from ..lstm_trm_recipe import ModelArguments, build_lstm_trm, check_distinct_files, read_preset, train_and_save
from .maze_hard import HUB_DATASET, MazeSet, load_csv_splits, load_trm_folder
from .mazes import MazeDataset, canonical_form, evaluate_mazes, generate_mazes, to_text

PRESETS = Path(__file__).parent / "presets"
RECIPES = ("cpu", "maze-hard")


@dataclass
class MazeArguments:
    recipe: str = field(default="cpu", metadata={
        "aliases": ["--preset"],
        "help": "cpu (small generated mazes that learn on 2 cores) or maze-hard (TRM's 30x30 setting, for a GPU)."})
    maze_size: int | None = field(default=None, metadata={"help": "Side of generated mazes."})
    maze_sizes: list[int] | None = field(default=None, metadata={
        "help": "Several sides in one run (e.g. 7 9 11 13 15): the training and held-out mazes are shared out evenly "
                "among them, each side's shortest path at least --min_path_length scaled by its area (relative to "
                "--maze_size), all padded with walls to the largest (or --canvas_size)."})
    min_path_length: int | None = field(default=None, metadata={
        "help": "Generated mazes' unique shortest path has at least this many steps."})
    train_mazes: int | None = field(default=None, metadata={"help": "Generated training mazes (augmented on the fly)."})
    eval_mazes: int | None = field(default=None, metadata={"help": "Generated held-out mazes."})
    canvas_size: int | None = field(default=None, metadata={
        "help": "Pad mazes with walls to this side, so the model also reads larger mazes (default: the mazes' side)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": f"Maze-Hard-shaped data: a Hub dataset (e.g. {HUB_DATASET}) or a folder with train.csv, test.csv."})
    train_file: str | None = field(default=None, metadata={"help": "A training CSV file of that shape."})
    test_file: str | None = field(default=None, metadata={"help": "A test CSV file of that shape."})
    data_dir: str | None = field(default=None, metadata={"help": "A folder built by TRM's build_maze_dataset.py."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})

    def uses_dataset(self) -> bool:
        return any((self.dataset_name, self.train_file, self.test_file, self.data_dir))


ARGUMENTS = (MazeArguments, ModelArguments)


def preset_defaults(maze_args: MazeArguments, model_args: ModelArguments) -> dict:
    if maze_args.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {', '.join(RECIPES)}, got {maze_args.recipe}")
    return read_preset(PRESETS / f"{maze_args.recipe}.json", f"outputs/lstm-trm-maze-{maze_args.recipe}")


def check(maze_args: MazeArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    check_max_minutes(maze_args.max_minutes)
    for flag in ("maze_size", "min_path_length", "train_mazes", "eval_mazes", "canvas_size"):
        value = getattr(maze_args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} must be at least 1, got {value}")
    if maze_args.maze_sizes is not None:
        if maze_args.uses_dataset():
            raise ValueError("--maze_sizes generates mazes: it does not go with dataset flags")
        if not maze_args.maze_sizes or min(maze_args.maze_sizes) < 5 or len(set(maze_args.maze_sizes)) != len(
                maze_args.maze_sizes):
            raise ValueError(f"--maze_sizes must be distinct sides of at least 5, got {maze_args.maze_sizes}")
        if maze_args.canvas_size and maze_args.canvas_size < max(maze_args.maze_sizes):
            raise ValueError(f"--canvas_size {maze_args.canvas_size} is smaller than --maze_sizes' largest, "
                             f"{max(maze_args.maze_sizes)}")
    if maze_args.maze_size is not None and maze_args.maze_size < 5:
        raise ValueError(f"--maze_size must be at least 5, got {maze_args.maze_size}")
    if maze_args.canvas_size and maze_args.maze_size and not maze_args.uses_dataset() \
            and maze_args.canvas_size < maze_args.maze_size:
        raise ValueError(f"--canvas_size {maze_args.canvas_size} is smaller than --maze_size {maze_args.maze_size}")
    if (maze_args.train_file is None) != (maze_args.test_file is None):
        raise ValueError("--train_file and --test_file go together (a training and a test CSV file)")
    sources = [flag for flag in ("dataset_name", "train_file", "data_dir") if getattr(maze_args, flag)]
    if len(sources) > 1:
        raise ValueError(f"give one data source: --{' or --'.join(sources)}")
    for flag in ("train_file", "test_file", "data_dir"):
        path = getattr(maze_args, flag)
        if path and not (Path(path).is_dir() if flag == "data_dir" else Path(path).is_file()):
            raise ValueError(f"--{flag}: no such {'folder' if flag == 'data_dir' else 'file'}: {path}")
    check_distinct_files(maze_args.train_file, maze_args.test_file)


def load_splits(args: MazeArguments, seed: int, is_main: bool) -> tuple[MazeSet, MazeSet, dict]:
    """Training and held-out mazes from the dataset flags, or generated (held-out mazes are no symmetric image of a
    training maze)."""
    if args.data_dir:
        train, test = (load_trm_folder(args.data_dir, split) for split in ("train", "test"))
        source = args.data_dir
    elif args.uses_dataset():
        local = args.dataset_name and Path(args.dataset_name).is_dir()
        if args.dataset_name:
            files = {s: str(Path(args.dataset_name) / f"{s}.csv") if local else f"{s}.csv" for s in ("train", "test")}
        else:
            files = {"train": args.train_file, "test": args.test_file}
        splits = load_csv_splits(files, None if local or not args.dataset_name else args.dataset_name)
        train, test = splits["train"], splits["test"]
        source = args.dataset_name or f"{args.train_file}, {args.test_file}"
    elif args.maze_sizes:
        return several_sides(args, seed, is_main)
    else:
        if is_main:
            print(f"Generating {args.train_mazes} training and {args.eval_mazes} held-out {args.maze_size}x"
                  f"{args.maze_size} mazes (unique shortest path of >= {args.min_path_length} steps)...", flush=True)
        train, test = generated_split(args.train_mazes, args.eval_mazes, args.maze_size, args.min_path_length, seed)
        source = f"generated, {args.maze_size}x{args.maze_size}, shortest path >= {args.min_path_length} steps"
    if is_main:
        print(f"Data: {len(train)} training and {len(test)} held-out {test.size}x{test.size} mazes ({source})",
              flush=True)
    info = {"source": source, "maze_size": train.size}
    if args.canvas_size:
        if args.canvas_size < train.size:
            raise ValueError(f"--canvas_size {args.canvas_size} is smaller than the {train.size}x{train.size} mazes")
        train, test = train.on_canvas(args.canvas_size), test.on_canvas(args.canvas_size)
        info["canvas_size"] = args.canvas_size
    return train, test, info


def generated_split(train_mazes: int, eval_mazes: int, side: int, min_path_length: int,
                    seed: int) -> tuple[MazeSet, MazeSet]:
    """Generated training and held-out mazes of one side; no held-out maze is a symmetric image of a training one."""
    train = MazeSet(*generate_mazes(train_mazes, side, min_path_length, seed=seed))
    seen = {canonical_form(q) for q in train.questions}
    test = MazeSet(*generate_mazes(eval_mazes, side, min_path_length, seed=seed + 1_000_003, exclude=seen))
    return train, test


def several_sides(args: MazeArguments, seed: int, is_main: bool) -> tuple[MazeSet, MazeSet, dict]:
    """Generated mazes of every side in --maze_sizes, shared out evenly, each on the same canvas (walls around a maze
    leave it the same maze), the held-out ones no symmetric image of a training maze of their side."""
    sides = sorted(args.maze_sizes)
    canvas = max(args.canvas_size or 0, sides[-1])
    parts = {"train": [], "test": []}
    paths = {}
    for k, side in enumerate(sides):
        paths[side] = max(2, round(args.min_path_length * side * side / args.maze_size ** 2))
        count, held = -(-args.train_mazes // len(sides)), -(-args.eval_mazes // len(sides))
        if is_main:
            print(f"Generating {count} training and {held} held-out {side}x{side} mazes (shortest path >= "
                  f"{paths[side]} steps)...", flush=True)
        train, test = generated_split(count, held, side, paths[side], seed + 7919 * k)
        parts["train"].append(train.on_canvas(canvas))
        parts["test"].append(test.on_canvas(canvas))
    train, test = (MazeSet(*(np.concatenate([getattr(m, name) for m in parts[split]])
                             for name in ("questions", "answers"))) for split in ("train", "test"))
    source = (f"generated, sides {', '.join(map(str, sides))} on a {canvas}x{canvas} canvas, shortest path >= "
              f"{', '.join(str(paths[side]) for side in sides)} steps")
    if is_main:
        print(f"Data: {len(train)} training and {len(test)} held-out mazes ({source})", flush=True)
    return train, test, {"source": source, "maze_size": canvas, "maze_sizes": sides, "canvas_size": canvas}


def run(maze_args: MazeArguments, model_args: ModelArguments, training_args: TrainingArguments) -> dict:
    set_seed(training_args.seed)
    set_threads(training_args, maze_args.num_threads)
    started = time.monotonic()
    is_main = training_args.process_index == 0
    train, held_out, data_info = load_splits(maze_args, training_args.seed, is_main)
    size = train.size
    model = build_lstm_trm(model_args, training_args, vocab_size=6, seq_len=size * size, is_main=is_main)
    length = training_args.max_steps * training_args.per_device_train_batch_size * training_args.world_size
    trainer = train_and_save(
        model, training_args,
        train_dataset=MazeDataset(train.questions, train.answers, length=length, seed=training_args.seed),
        eval_dataset=MazeDataset(held_out.questions, held_out.answers, length=len(held_out), augment=False),
        evaluate_fn=lambda m, dataset: {**evaluate_mazes(m, dataset.questions, dataset.answers),
                                        "minutes": round((time.monotonic() - started) / 60, 2)},
        tokenizer=build_maze_tokenizer(size), ema_decay=maze_args.ema_decay, max_minutes=maze_args.max_minutes)
    output_dir = Path(training_args.output_dir)

    with after_training("evaluation", output_dir), trainer.ema_weights() as ema:
        results = {"held_out": evaluate_mazes(ema, held_out.questions, held_out.answers)}
    results["train_minutes"] = round((time.monotonic() - started) / 60, 2)
    results["train_steps"] = trainer.state.global_step
    if is_main:
        example = to_text(held_out.questions[0])
        with after_training("writing the results, the plot and the model card", output_dir):
            finish_run(trainer, results, dict(task="maze", data=data_info, train_puzzles=len(train),
                                              ema_decay=maze_args.ema_decay, example_puzzle=example), [
                Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("accuracy", {"train_exact_accuracy": "training rows that halted (exact)",
                                   "eval_exact_accuracy": "held-out exact (EMA)",
                                   "eval_valid_shortest_path_accuracy": "held-out valid shortest path (EMA)"},
                      ylim=(0, 1.02), markers={"eval_exact_accuracy", "eval_valid_shortest_path_accuracy"})])
        held = results["held_out"]
        side = data_info["maze_size"]
        print(f"\nHeld-out {side}x{side} ({held['mazes']} mazes, {data_info['source']}): exact "
              f"{held['exact_accuracy']:.3f}, valid shortest path {held['valid_shortest_path_accuracy']:.3f} after "
              f"{model.config.halt_max_steps} steps (TRM's convention); at the Q head's halt "
              f"{held['exact_accuracy_at_q_halt']:.3f} / {held['valid_shortest_path_accuracy_at_q_halt']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)", flush=True)
    return results
