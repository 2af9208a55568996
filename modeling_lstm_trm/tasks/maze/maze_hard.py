"""Maze-Hard as TRM uses it, and files of the same shape.

CSV (`sapientinc/maze-30x30-hard-1k`'s `train.csv` / `test.csv`, and what `examples/make_dataset.py --task maze`
writes): the header `source,question,answer,rating`, then one maze per row, N*N characters row by row from `# SGo`.
TRM's prebuilt folders (`<dir>/<split>/all__inputs.npy`, `all__labels.npy`, ... and `dataset.json`) hold the same
grids as tokens (0 pad, then the charset shifted by one). Every row is checked (length, characters, one S and one G,
an answer that marks a shortest path); a bad row is an error naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..puzzle_csv import read_puzzle_csv, write_puzzle_csv
from ..task import PuzzleSet
from ..trm_folder import read_trm_folder
from ..trm_folder import write_trm_folder as write_folder
from .mazes import CHARSET, TO_TOKEN, VOCABULARY, canvas_for, pad_to_canvas, path_problem, to_text, to_tokens

HUB_DATASET = "sapientinc/maze-30x30-hard-1k"


class MazeSet(PuzzleSet):
    """Questions and answers, each (count, N, N) tokens."""

    def on_canvas(self, canvas: int) -> MazeSet:
        """The same mazes padded with walls to canvas x canvas (see `pad_to_canvas`)."""
        return MazeSet(pad_to_canvas(self.questions, canvas), pad_to_canvas(self.answers, canvas))

    def for_model(self, config) -> MazeSet:
        """The mazes as a model of this config reads them: as they are for the conv mixer (any side), padded with
        walls to the model's canvas otherwise; ValueError where they are larger than that canvas."""
        canvas = canvas_for(config, self.size)
        return self if canvas == self.size else self.on_canvas(canvas)


def write_csv(path, data: MazeSet, source: str) -> None:
    """Mazes in Maze-Hard's CSV shape; the rating column holds the shortest path's length in steps."""
    write_puzzle_csv(path, ([source, to_text(q), to_text(a), int((a == 5).sum()) + 1]
                            for q, a in zip(data.questions, data.answers)))


def from_columns(columns: dict, where: str) -> MazeSet:
    """Mazes from one split's `question` and `answer` columns; every row checked, errors name the line."""
    questions, answers = columns["question"], columns["answer"]
    if not questions:
        raise ValueError(f"{where}: no mazes")
    size = round(len(questions[0] or "") ** 0.5)
    out_q, out_a = [], []
    for row, (question, answer) in enumerate(zip(questions, answers)):
        line = f"{where}, line {row + 2}"
        out_q.append(to_tokens(question, size, line, "question"))
        out_a.append(to_tokens(answer, size, line, "answer"))
        check_path(out_q[-1], out_a[-1], line)
    return MazeSet(np.stack(out_q), np.stack(out_a))


def check_path(question: np.ndarray, answer: np.ndarray, place: str) -> None:
    """ValueError naming `place` if the answer is not a shortest path (or the maze lacks S or G)."""
    try:
        problem = path_problem(question, answer)
    except ValueError as error:
        problem = str(error)
    if problem:
        raise ValueError(f"{place}: {problem}")


def load_csv_splits(data_files: dict[str, str], dataset_name: str | None = None) -> dict[str, MazeSet]:
    """Splits in the CSV shape: `data_files` maps split names to CSV files (paths, or names inside `dataset_name`)."""
    splits = {}
    for split, name in data_files.items():
        columns, where = read_puzzle_csv(name, dataset_name)
        splits[split] = from_columns(columns, where)
    sizes = {data.size for data in splits.values()}
    if len(sizes) > 1:
        raise ValueError(f"the splits hold mazes of different sizes: {sorted(sizes)}")
    return splits


def load_trm_folder(data_dir, split: str) -> MazeSet:
    """One split of a folder built by TRM's `dataset/build_maze_dataset.py` (tokens as here: `# SGo` from 1)."""
    tokens = (min(TO_TOKEN.values()), max(TO_TOKEN.values()))
    inputs, labels = read_trm_folder(data_dir, split, "build_maze_dataset.py", tokens, tokens,
                                     f"TRM's `{CHARSET}` shifted by one")
    size = round(inputs.shape[1] ** 0.5)
    questions, answers = inputs.reshape(-1, size, size), labels.reshape(-1, size, size)
    for row, (question, answer) in enumerate(zip(questions, answers)):
        check_path(question, answer, f"{Path(data_dir) / split / 'all__labels.npy'}, row {row}")
    return MazeSet(questions, answers)


def write_trm_folder(data_dir, splits: dict[str, MazeSet]) -> None:
    """The mazes as a TRM prebuilt folder (one example per maze, no augmented copies)."""
    for split, data in splits.items():
        cells = data.size ** 2
        write_folder(data_dir, split, data.questions.reshape(-1, cells), data.answers.reshape(-1, cells),
                     len(VOCABULARY))
