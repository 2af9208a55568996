"""The flags every puzzle task shares, as dataclasses (the command layer, `modeling_lstm_trm.cli`, builds the parsers
from them), each with a `check` that says, in one line naming the flag, what cannot work: before any work is done,
and bounded, so that no flag can ask for hours of work by a slip of the keyboard."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

MAX_STEPS = 4096  # supervision steps a puzzle may run at test time (thinking longer: 256x a 16-step training depth)
MAX_TRAJECTORIES = 256  # noisy trajectories per puzzle (each is a row of the batch)


def at_least(value, least: int, flag: str) -> None:
    if value is not None and value < least:
        raise ValueError(f"--{flag} must be at least {least}, got {value}")


def check_steps(values, flag: str) -> None:
    """Supervision-step counts (one, or a list): each in 1..MAX_STEPS."""
    for value in values if isinstance(values, (list, tuple)) else [values]:
        if value is not None and not 1 <= value <= MAX_STEPS:
            raise ValueError(f"--{flag} must be at least 1 and at most {MAX_STEPS} (supervision steps), got {value}")


def check_path(path: str | None, flag: str, folder: bool = False) -> None:
    if path and not (Path(path).is_dir() if folder else Path(path).is_file()):
        raise ValueError(f"--{flag}: no such {'folder' if folder else 'file'}: {path}")


def check_trajectories(count: int, noise_scale: float) -> None:
    if not 1 <= count <= MAX_TRAJECTORIES:
        raise ValueError(f"--num_trajectories must be in 1..{MAX_TRAJECTORIES}, got {count}")
    if not 0 <= noise_scale < math.inf:
        raise ValueError(f"--noise_scale must be a finite number >= 0, got {noise_scale}")


@dataclass
class DataSourceArguments:
    """Where a task's training data comes from when it is not generated: one source, checked once for every task."""

    dataset_name: str | None = field(default=None, metadata={
        "help": "A Hub dataset, or a local folder holding train.csv and test.csv, in the task's CSV shape."})
    train_file: str | None = field(default=None, metadata={"help": "A training CSV file of that shape."})
    test_file: str | None = field(default=None, metadata={"help": "A test CSV file of that shape."})
    data_dir: str | None = field(default=None, metadata={
        "help": "A folder built by TRM's dataset script for the task ({train,test}/all__inputs.npy, ...)."})

    def uses_dataset(self) -> bool:
        return any((self.dataset_name, self.train_file, self.test_file, self.data_dir))

    def check_source(self) -> None:
        """One source (a task checks its own flags against it next, then `check_paths`)."""
        if (self.train_file is None) != (self.test_file is None):
            raise ValueError("--train_file and --test_file go together (a training and a test CSV file)")
        sources = [flag for flag in ("dataset_name", "train_file", "data_dir") if getattr(self, flag)]
        if len(sources) > 1:
            raise ValueError(f"give one data source: --{' or --'.join(sources)}")

    def check_paths(self) -> None:
        """The files and folder exist, and the test file is not the training file."""
        for flag in ("train_file", "test_file"):
            check_path(getattr(self, flag), flag)
        check_path(self.data_dir, "data_dir", folder=True)
        if self.train_file and Path(self.train_file).resolve() == Path(self.test_file).resolve():
            raise ValueError(f"--test_file {self.test_file} is --train_file: the held-out score would be on training "
                             "puzzles")

    def csv_files(self) -> tuple[dict[str, str], str | None]:
        """The CSV files of the source (--dataset_name or --train_file/--test_file) and the Hub dataset they are in
        (None for local files)."""
        if self.dataset_name and Path(self.dataset_name).is_dir():
            return {split: str(Path(self.dataset_name) / f"{split}.csv") for split in ("train", "test")}, None
        if self.dataset_name:
            return {"train": "train.csv", "test": "test.csv"}, self.dataset_name
        return {"train": self.train_file, "test": self.test_file}, None

    def source_name(self) -> str:
        return self.data_dir or self.dataset_name or f"{self.train_file}, {self.test_file}"


@dataclass
class EvaluationSourceArguments:
    """Where evaluation puzzles come from: a file, a dataset's test split, a TRM folder's, or generated ones."""

    file: str | None = field(default=None, metadata={"help": "A file of puzzles in the task's text or CSV shape."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A Hub dataset or a local folder whose test.csv holds the puzzles."})
    data_dir: str | None = field(default=None, metadata={"help": "A TRM prebuilt folder (its test split)."})
    num_puzzles: int = field(default=1000, metadata={"help": "Generated puzzles (without a file or dataset)."})
    seed: int = field(default=2024, metadata={"help": "Seed of generated puzzles (training used others)."})

    def check_source(self, generated: tuple[str, ...] = ()) -> None:
        """One source at most (`generated`: the task's flags that ask for generated puzzles, one of them required)."""
        given = [flag for flag in ("file", "dataset_name", "data_dir", *generated) if getattr(self, flag) is not None]
        if len(given) > 1:
            raise ValueError(f"give one source of puzzles: --{' or --'.join(given)}")
        if generated and not given:
            raise ValueError(f"give the puzzles: --{' or --'.join(('file', 'dataset_name', 'data_dir', *generated))}")
        check_path(self.file, "file")
        check_path(self.data_dir, "data_dir", folder=True)
        at_least(self.num_puzzles, 1, "num_puzzles")

    def test_csv(self) -> tuple[str, str | None]:
        """The test CSV file of --file or --dataset_name, and its Hub dataset (None for a local file)."""
        if self.file:
            return self.file, None
        if Path(self.dataset_name).is_dir():
            return str(Path(self.dataset_name) / "test.csv"), None
        return "test.csv", self.dataset_name

    def source_name(self) -> str:
        """The name results of a file or dataset are filed under."""
        return Path(self.file).stem if self.file else Path(self.dataset_name).name if self.dataset_name else "trm_test"


@dataclass
class PuzzleEvaluateArguments:
    """examples/evaluate_model.py for any puzzle task: a file of `question answer` lines, or generated puzzles."""

    file: str | None = field(default=None, metadata={
        "help": "Puzzles, `question answer` per line in the task's characters (`//` starts a comment)."})
    num_puzzles: int = field(default=1000, metadata={"help": "Else this many generated puzzles."})
    seed: int = field(default=2024, metadata={"help": "Seed of generated puzzles (training used others)."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Supervision steps (default: the model's halt_max_steps)."})

    def check(self) -> None:
        check_path(self.file, "file")
        at_least(self.num_puzzles, 1, "num_puzzles")
        check_steps(self.max_steps, "max_steps")


@dataclass
class PuzzleSolveArguments:
    """examples/solve.py for any puzzle task: puzzles as arguments or from a file, the answer after every step."""

    file: str | None = field(default=None, metadata={"help": "A file of puzzles, `question [answer]` per line."})
    trace: bool = field(default=False, metadata={"help": "Print the answer after every supervision step."})
    png: str | None = field(default=None, metadata={"help": "Draw the trace of the first puzzle into this PNG file."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Supervision steps at most (default: the model's halt_max_steps)."})

    def check(self) -> None:
        check_path(self.file, "file")
        check_steps(self.max_steps, "max_steps")
