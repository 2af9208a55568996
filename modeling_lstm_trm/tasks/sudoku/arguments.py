"""The Sudoku task's flags: training (the main job; presets by --grid_size or --recipe), evaluation and solving, each
checked before any work."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...training.runs import SCHEDULE_BY_TIME_HELP
from ..arguments import (
    DataSourceArguments,
    EvaluationSourceArguments,
    at_least,
    check_path,
    check_steps,
    check_trajectories,
)
from .puzzles import BOXES, parse_puzzles


@dataclass
class SudokuArguments(DataSourceArguments):
    grid_size: int | None = field(default=None, metadata={
        "help": "4, 6 or 9: picks the preset (presets/<n>x<n>.json); default 6, or 9 with a dataset or --recipe hard."})
    recipe: str | None = field(default=None, metadata={
        "aliases": ["--preset"],
        "help": "Train with another preset: a grid size (e.g. --grid_size 9 --recipe 6: the 6x6 CPU recipe on 9x9) "
                "or `hard` (9x9 minimal puzzles rated by backtracks: generated, or from the dataset flags)."})
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
        "help": "Puzzle files to evaluate on at the end; a folder stands for its *.txt files of this grid size "
                "(examples/train.py's default: the repository's ../shared/data/sudoku where it exists; `none` for "
                "none)."})
    max_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes (the 6x6 preset stops at 6: held-out 1.000 comes near 3)."})
    schedule_by_time: bool = field(default=False, metadata={"help": SCHEDULE_BY_TIME_HELP})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    puzzle_emb_lr: float | None = field(default=None, metadata={"help": "Learning rate of the puzzle embeddings."})
    puzzle_emb_weight_decay: float | None = field(default=None, metadata={"help": "Their weight decay."})
    num_threads: int | None = field(default=None, metadata={
        "help": "PyTorch CPU threads per process (default: this machine's cores divided among its processes; "
                "`accelerate launch` without a config would otherwise leave each process one thread)."})

    @property
    def size(self) -> int:
        """The grid size: --grid_size, else 9 for a dataset or the hard recipe, else 6."""
        if self.grid_size is not None:
            return self.grid_size
        return 9 if self.uses_dataset() or self.recipe == "hard" else 6


RESULT_KEYS = ("held_out", "train_minutes", "train_steps")  # what a run reports besides its --eval_files


def eval_files(names: list[str], size: int) -> list[Path]:
    """The --eval_files: files as given, a folder as its *.txt files of puzzles of this size; `none` for none."""
    files = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.glob("*.txt") if _puzzle_size(p) == size)
        elif name != "none":
            files.append(path)
    return files


def _puzzle_size(path: Path) -> int | None:
    for line in path.read_text().splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            return round(len(text) ** 0.5)
    return None


def check_eval_files(args: SudokuArguments) -> None:
    """Every --eval_files file holds puzzles of the run's size (every line, now rather than after training), and no
    two results would be filed under one name."""
    filed_as: dict[str, str] = {}
    for name in map(str, eval_files(args.eval_files, args.size)):
        check_path(name, "eval_files")
        if parse_puzzles(name).shape[-1] != args.size:
            raise ValueError(f"--eval_files: {name} does not hold {args.size}x{args.size} puzzles (see --grid_size)")
        key = Path(name).stem  # the file's results are filed under its name
        if key in RESULT_KEYS or key in filed_as:
            taken = f"the run's own '{key}' result" if key in RESULT_KEYS else filed_as[key]
            raise ValueError(f"--eval_files: {name} would be reported as '{key}', like {taken}: rename the file")
        filed_as[key] = name


def check_data_flags(args: SudokuArguments) -> None:
    for flag in ("subsample_size", "eval_subsample"):
        at_least(getattr(args, flag), 1, flag)
    args.check_source()
    if args.uses_dataset() and args.size != 9:
        raise ValueError(f"Sudoku-Extreme data is 9x9: --grid_size {args.grid_size} does not fit")
    if args.recipe == "hard" and args.size != 9:
        raise ValueError(f"--recipe hard is 9x9: --grid_size {args.grid_size} does not fit")
    if args.data_dir and args.min_rating is not None:
        raise ValueError("--min_rating needs the ratings of a CSV dataset; a TRM folder (--data_dir) has none")
    args.check_paths()
    if not args.uses_dataset() and (args.subsample_size or args.eval_subsample or args.drop_invalid):
        raise ValueError("--subsample_size, --eval_subsample and --drop_invalid select rows of a dataset "
                         "(--dataset_name, --train_file/--test_file or --data_dir); generated puzzles are set by "
                         "--train_puzzles and --eval_puzzles")
    if args.min_rating is not None and not args.uses_dataset() and args.recipe != "hard":
        raise ValueError("--min_rating selects dataset rows or, with --recipe hard, the puzzles generated")


@dataclass
class SudokuEvaluateArguments(EvaluationSourceArguments):
    """A puzzle file (one per line, or Sudoku-Extreme's CSV), a dataset's test split, a TRM folder, or generated
    puzzles (--grid_size); scored at each --max_steps depth, with noisy trajectories on request."""

    grid_size: int | None = field(default=None, metadata={
        "help": "Evaluate on generated puzzles of this size (4, 6, 9)."})
    givens: int | None = field(default=None, metadata={"help": "Givens of generated puzzles (default 6 / 14 / 30)."})
    min_rating: int | None = field(default=None, metadata={"help": "CSV data: only puzzles rated at least this."})
    eval_subsample: int | None = field(default=None, metadata={
        "help": "Datasets: a fixed, seeded subset of this many."})
    max_steps: list[int] | None = field(default=None, metadata={
        "help": "Supervision-step depths to score (default: the model's halt_max_steps)."})
    num_trajectories: int = field(default=1, metadata={
        "help": "Noisy trajectories per puzzle, picked by the Q head and by the checker."})
    noise_scale: float = field(default=0.5, metadata={"help": "Std of the trajectories' initial noise."})

    def check(self) -> None:
        self.check_source(generated=("grid_size",))
        if self.grid_size is not None and self.grid_size not in BOXES:
            raise ValueError(f"--grid_size must be one of {sorted(BOXES)} for Sudoku, got {self.grid_size}")
        check_trajectories(self.num_trajectories, self.noise_scale)
        check_steps(self.max_steps or [], "max_steps")
        at_least(self.eval_subsample, 1, "eval_subsample")
        if self.min_rating is not None and not self.rated:
            raise ValueError("--min_rating filters rated CSV data (--file X.csv or --dataset_name): these puzzles have "
                             "no rating")

    @property
    def rated(self) -> bool:
        """Sudoku-Extreme-shaped CSV data (a rating per puzzle)."""
        return bool(self.dataset_name or (self.file or "").endswith(".csv"))


@dataclass
class SudokuSolveArguments:
    file: str | None = field(default=None, metadata={
        "help": "A file of puzzles, one per line (// starts a comment), or a CSV file of Sudoku-Extreme's shape."})
    trace: bool = field(default=False, metadata={"help": "Print the grid after every supervision step."})
    png: str | None = field(default=None, metadata={"help": "Draw the trace of the first puzzle into this PNG file."})
    max_steps: int | None = field(default=None, metadata={"help": "Supervision steps at most (default: the model's)."})
    num_trajectories: int = field(default=1, metadata={"help": "Noisy trajectories per puzzle."})
    noise_scale: float = field(default=0.5, metadata={"help": "Std of their initial noise."})
    checker: bool = field(default=False, metadata={"help": "Also pick a trajectory whose answer checks out."})
    seed: int = field(default=0, metadata={"help": "Seed of the trajectories' noise."})

    def check(self) -> None:
        check_path(self.file, "file")
        check_trajectories(self.num_trajectories, self.noise_scale)
        check_steps(self.max_steps, "max_steps")


@dataclass
class SudokuDatasetArguments:
    """examples/make_dataset.py for Sudoku: minimal 9x9 puzzles rated by backtracks, in Sudoku-Extreme's CSV shape."""

    num_puzzles: int = field(metadata={"help": "Puzzles to write."})
    min_rating: int = field(default=0, metadata={"help": "Keep puzzles rated at least this (backtracks)."})
    seed: int = field(default=0, metadata={"help": "Seed of the generator."})
    num_workers: int = field(default=os.cpu_count() or 1, metadata={"help": "Processes (default: all cores)."})
    exclude: str | None = field(default=None, metadata={"help": "Mazes only (--task maze)."})

    def check(self) -> None:
        at_least(self.num_puzzles, 1, "num_puzzles")
        at_least(self.num_workers, 1, "num_workers")
        at_least(self.min_rating, 0, "min_rating")
        if self.exclude:
            raise ValueError("--exclude leaves out mazes (--task maze); generated Sudoku puzzles are minimal and "
                             "random")
