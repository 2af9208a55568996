"""The CSV shape TRM's puzzle datasets share (Sudoku-Extreme, Maze-Hard): a header `source,question,answer,rating`,
then one puzzle per row, its grid as a string row by row. Read through `datasets`, every column as text (an answer of
digits is never taken for a number); what a row means is the task's business."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["source", "question", "answer", "rating"]


def read_puzzle_csv(name: str, dataset_name: str | None = None) -> tuple[dict[str, list], str]:
    """The columns of one CSV file (a path, or a file name inside the Hub dataset `dataset_name`) as lists, and how
    errors should name the file. ValueError for a missing file, a wrong header, or a file the CSV parser rejects."""
    from datasets import Features, Value, load_dataset

    where = f"{dataset_name}/{name}" if dataset_name else str(name)
    if not dataset_name:
        if not Path(name).is_file():
            raise ValueError(f"no such file: {name}")
        with open(name, newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != COLUMNS:
            raise ValueError(f"{where}, line 1: expected the header {','.join(COLUMNS)}, got {','.join(header)}")
    try:
        table = load_dataset(dataset_name or "csv", data_files={"rows": name}, split="rows", keep_default_na=False,
                             features=Features({column: Value("string") for column in COLUMNS}))
    except Exception as error:  # pandas' parser errors name the line but not the file
        message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise ValueError(f"{where}: not a CSV file of the shape {','.join(COLUMNS)} ({message})") from None
    return {column: table[column][:] for column in table.column_names}, where


def write_puzzle_csv(path, rows) -> None:
    """Rows of (source, question, answer, rating) under the header."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
