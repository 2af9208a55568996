"""Make a puzzle dataset offline, in the shape the training and evaluation scripts read; the task writes it.

    python examples/make_dataset.py --task sudoku --num_puzzles 1000 --min_rating 5 --output hard.csv --seed 1
    python examples/make_dataset.py --task maze --size 30 --min_path_length 110 --num_puzzles 1000 --output m.csv

Sudoku: minimal 9x9 puzzles (no given can be removed without losing uniqueness), each rated by the number of
backtracks a fixed propagate-and-backtrack solver needs (`modeling_lstm_trm.tasks.sudoku.hard_puzzles`), kept when
the rating is at least --min_rating, written in Sudoku-Extreme's CSV shape (`source,question,answer,rating`), so
`--train_file` / `--test_file` and `examples/evaluate_model.py --file` read it like the Hub data. Prints the rating
distribution and the rate; the last line printed is a JSON summary.

Maze: N x N mazes (`--size`; `--maze_style scattered` for Maze-Hard's random walls, where the answer marks one of
several shortest paths) whose shortest path from S to G is unique and at least --min_path_length steps, no two
related by a rotation or reflection, in Maze-Hard's CSV shape (the rating column is the path's length). With
--exclude FILE.csv (e.g. the training set), no maze that a symmetry maps onto one of that file's is written: a
held-out split.

`--task T --help` lists a task's flags.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_lstm_trm.cli import ArgumentParser, ArgumentParserForTraining, run_cli
from modeling_lstm_trm.tasks import get_task


def main(argv: list[str] | None = None) -> dict:
    first = ArgumentParser(add_help=False)
    first.add_argument("--task", default="sudoku")
    known, _ = first.parse_known_args(argv)
    try:
        task = get_task(known.task)
    except ValueError as error:
        first.error(str(error))
    flags = getattr(task, "dataset_arguments", None)
    if flags is None:
        first.error(f"--task {known.task} writes no dataset")
    parser = ArgumentParserForTraining([flags], description=__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="sudoku", help="the task whose puzzles to write (default sudoku)")
    parser.add_argument("--output", required=True, help="the CSV file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    options, args, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unknown:
        parser.error(f"{' '.join(unknown)}: not a flag of make_dataset for --task {task.name}")
    output = Path(args.output)
    try:
        options.check()
        if output.exists() and not args.overwrite:
            raise ValueError(f"--output {output} exists (--overwrite replaces it)")
        if not output.parent.is_dir():
            raise ValueError(f"--output: no such folder: {output.parent}")
    except ValueError as error:
        parser.error(str(error))
    summary = task.write_dataset(output, options)  # nothing is written where the generator gives up
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    run_cli(main)
