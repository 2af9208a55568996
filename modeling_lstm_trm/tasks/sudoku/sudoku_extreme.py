"""Sudoku-Extreme as TRM uses it, and files of the same shape.

The CSV shape (`sapientinc/sudoku-extreme`'s `train.csv` / `test.csv`, and what `examples/make_dataset.py` writes):
a header `source,question,answer,rating`, then one puzzle per row: 81-character strings row by row, `.` (or `0`)
for a blank in the question, the solution in the answer, and an integer difficulty rating (a backtrack count).
CSV files are read through `datasets` (a Hub dataset, a local folder holding the two files, or the files
themselves). TRM's prebuilt folders (`<dir>/<split>/all__inputs.npy`, `all__labels.npy`, ... and `dataset.json`)
hold the same grids shifted by one (0 pad, 1 blank, 2-10 the digits) and are read with numpy.

Every row that is used is checked: 81 cells, digits only, an answer that is a valid grid and keeps the givens. A bad
row is an error naming the file and line, or, with `drop_invalid=True`, it is dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..puzzle_csv import COLUMNS, read_puzzle_csv, write_puzzle_csv
from ..trm_folder import read_trm_folder
from ..trm_folder import write_trm_folder as write_folder
from .puzzles import SudokuSet, answer_checker

CELLS = 81
HUB_DATASET = "sapientinc/sudoku-extreme"


@dataclass
class LoadedSplit:
    """One split after loading: the puzzles, and how many rows were read, filtered out by rating, and dropped as
    invalid (only with `drop_invalid`)."""

    data: SudokuSet
    rows: int
    below_min_rating: int = 0
    dropped_invalid: int = 0


def write_csv(path, puzzles: np.ndarray, solutions: np.ndarray, ratings: np.ndarray, source: str) -> None:
    """Puzzles in Sudoku-Extreme's CSV shape (blanks as `.`)."""
    write_puzzle_csv(path, ([source, "".join(str(v) if v else "." for v in puzzle.reshape(-1)),
                             "".join(map(str, solution.reshape(-1))), int(rating)]
                            for puzzle, solution, rating in zip(puzzles, solutions, ratings)))


def grid_problems(puzzles: np.ndarray, solutions: np.ndarray) -> list[str | None]:
    """For each (puzzle, solution) pair of (n, 81) digit arrays: None if the solution is a valid grid that keeps the
    puzzle's givens, else what is wrong."""
    check = answer_checker((3, 3))
    problems: list[str | None] = [None] * len(puzzles)
    for start in range(0, len(puzzles), 65536):
        p, s = puzzles[start:start + 65536], solutions[start:start + 65536]
        answers = torch.from_numpy(np.ascontiguousarray(s))
        valid = check(torch.zeros_like(answers), answers).numpy()  # no givens: is it a valid grid at all?
        keeps = ((p == 0) | (p == s)).all(1)
        for k in np.flatnonzero(~(valid & keeps)):
            problems[start + k] = ("the answer contradicts the question's givens" if valid[k]
                                   else "the answer is not a valid Sudoku grid (a digit repeats in a row, column or "
                                        "box)")
    return problems


def _digits(strings: list, blank: bool) -> tuple[np.ndarray, list[str | None]]:
    """81-character strings to an (n, 81) array, with a problem (or None) per string."""
    problems: list[str | None] = [None] * len(strings)
    out = np.zeros((len(strings), CELLS), dtype=np.int64)
    allowed = set(".0123456789" if blank else "123456789")
    what = "question" if blank else "answer"
    for k, text in enumerate(strings):
        if not isinstance(text, str) or len(text) != CELLS:
            got = "nothing" if not text else f"{len(text)} characters"
            problems[k] = f"the {what} must have 81 characters, got {got}"
            continue
        if not set(text) <= allowed:
            bad = "".join(sorted(set(text) - allowed))
            problems[k] = f"the {what} holds {bad!r} (allowed: {'digits and . for a blank' if blank else '1-9'})"
            continue
        out[k] = np.frombuffer(text.replace(".", "0").encode("ascii"), dtype=np.uint8) - 48
    return out, problems


def _ratings(values: list) -> tuple[np.ndarray, list[str | None]]:
    out = np.zeros(len(values), dtype=np.int64)
    problems: list[str | None] = [None] * len(values)
    for k, value in enumerate(values):
        try:
            out[k] = int(value)
        except (TypeError, ValueError, OverflowError):
            problems[k] = f"the rating must be an integer, got {value!r} (of at most 19 digits)"
    return out, problems


def select_rows(eligible: np.ndarray, ratings: np.ndarray, min_rating: int | None, subsample_size: int | None,
                seed: int) -> tuple[np.ndarray, int]:
    """Row indices kept (and how many were below `min_rating`): eligible rows rated at least `min_rating`, then
    `subsample_size` of them drawn without replacement by a generator seeded with `seed`, in file order, so the same
    flags always select the same puzzles."""
    keep = np.flatnonzero(eligible)
    below = 0
    if min_rating is not None:
        below = int((ratings[keep] < min_rating).sum())
        keep = keep[ratings[keep] >= min_rating]
    if subsample_size is not None and subsample_size < len(keep):
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=subsample_size, replace=False))
    return keep, below


def from_columns(columns: dict, where: str, min_rating: int | None = None, subsample_size: int | None = None,
                 seed: int = 0, drop_invalid: bool = False) -> LoadedSplit:
    """Puzzles from the columns of one split (lists of `question`, `answer`, `rating`); `where` names the file in
    errors, whose line numbers count the header as line 1. Ratings are checked on every row; questions and answers on
    the rows selected."""
    missing = [name for name in ("question", "answer") if name not in columns]
    if missing:
        raise ValueError(f"{where}: no {' or '.join(missing)} column (expected the header {','.join(COLUMNS)})")
    count = len(columns["question"])
    ratings, problems = _ratings(columns["rating"]) if "rating" in columns else (np.zeros(count, np.int64),
                                                                                  [None] * count)
    eligible = np.array([problem is None for problem in problems], dtype=bool)
    rows, below = select_rows(eligible, ratings, min_rating, subsample_size, seed)
    puzzles, question_problems = _digits([columns["question"][k] for k in rows], blank=True)
    solutions, answer_problems = _digits([columns["answer"][k] for k in rows], blank=False)
    for i, (question, answer, grid) in enumerate(zip(question_problems, answer_problems,
                                                     grid_problems(puzzles, solutions))):
        problems[rows[i]] = question or answer or grid
    bad = [k for k, problem in enumerate(problems) if problem]
    if bad and not drop_invalid:
        raise ValueError(f"{where}, line {bad[0] + 2}: {problems[bad[0]]}"
                         + (f" ({len(bad)} bad rows in all; --drop_invalid drops and counts them)"
                            if len(bad) > 1 else " (--drop_invalid drops and counts such rows)"))
    good = np.array([i for i, k in enumerate(rows) if not problems[k]], dtype=np.int64)
    data = SudokuSet(puzzles[good].reshape(-1, 9, 9), solutions[good].reshape(-1, 9, 9), (3, 3),
                     ratings=ratings[rows[good]])
    if not len(data):
        raise ValueError(f"{where}: no puzzles left (of {count} rows: {below} below --min_rating, {len(bad)} invalid)")
    return LoadedSplit(data, rows=count, below_min_rating=below, dropped_invalid=len(bad))


def load_csv_splits(data_files: dict[str, str], dataset_name: str | None = None, **selection) -> dict[str, LoadedSplit]:
    """Splits in the CSV shape through `datasets`: `data_files` maps split names to CSV files (paths, or file names
    inside the Hub dataset `dataset_name`). `selection`: `min_rating`, `subsample_size`, `seed`, `drop_invalid` (see
    `from_columns`), per split as a dict keyed by split, or one value for all."""
    splits = {}
    for split, name in data_files.items():
        columns, where = read_puzzle_csv(name, dataset_name)
        options = {key: (value.get(split) if isinstance(value, dict) else value) for key, value in selection.items()}
        splits[split] = from_columns(columns, where, **options)
    return splits


def load_trm_folder(data_dir, split: str, subsample_size: int | None = None, seed: int = 0) -> LoadedSplit:
    """One split of a folder built by TRM's `dataset/build_sudoku_dataset.py`. Values are shifted back (1 blank,
    2-10 digits become 0 and 1-9); the examples are taken as they are (TRM stores its augmentations as examples)."""
    inputs, labels = read_trm_folder(data_dir, split, "build_sudoku_dataset.py", (1, 10), (2, 10),
                                     "TRM's shift by one: 1 a blank, 2-10 the digits", cells=CELLS)
    puzzles, solutions = inputs - 1, labels - 1
    keep, _ = select_rows(np.ones(len(puzzles), dtype=bool), np.zeros(len(puzzles)), None, subsample_size, seed)
    problems = grid_problems(puzzles[keep], solutions[keep])
    bad = [i for i, problem in enumerate(problems) if problem]
    if bad:
        raise ValueError(f"{Path(data_dir) / split / 'all__labels.npy'}, row {keep[bad[0]]}: {problems[bad[0]]}")
    return LoadedSplit(SudokuSet(puzzles[keep].reshape(-1, 9, 9), solutions[keep].reshape(-1, 9, 9), (3, 3)),
                       rows=len(puzzles))


def write_trm_folder(data_dir, splits: dict[str, SudokuSet]) -> None:
    """The grids as a TRM prebuilt folder (tokens shifted by one: 1 a blank, 2-10 the digits)."""
    for split, data in splits.items():
        write_folder(data_dir, split, data.puzzles.reshape(-1, CELLS) + 1, data.solutions.reshape(-1, CELLS) + 1,
                     vocab_size=11)
