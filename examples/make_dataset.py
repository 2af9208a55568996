"""Make a puzzle dataset offline, in the shape the training and evaluation scripts read.

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
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.tasks.sudoku.hard_puzzles import generate_hard_puzzles
from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import write_csv


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["sudoku", "maze"], default="sudoku")
    parser.add_argument("--num_puzzles", type=int, required=True)
    parser.add_argument("--min_rating", type=int, default=0, help="Sudoku: keep puzzles rated at least this")
    parser.add_argument("--size", type=int, default=30, help="maze: side of the grid")
    parser.add_argument("--min_path_length", type=int, default=110, help="maze: shortest path of at least this")
    parser.add_argument("--maze_style", choices=("carved", "scattered"), default="carved",
                        help="maze: carved corridors (a unique shortest path) or scattered walls (Maze-Hard's kind)")
    parser.add_argument("--maze_loops", type=float,
                        help="maze, carved: the share of inner walls knocked down (default 0.05; 0: no loops)")
    parser.add_argument("--exclude", help="maze: a CSV file whose mazes (and their symmetric images) to leave out")
    parser.add_argument("--output", required=True, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if args.num_puzzles < 1 or args.num_workers < 1:
        parser.error("--num_puzzles and --num_workers must be at least 1")
    if args.min_rating < 0:
        parser.error("--min_rating must be at least 0")
    if args.task == "sudoku" and args.exclude:
        parser.error("--exclude leaves out mazes (--task maze); generated Sudoku puzzles are minimal and random")
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        parser.error(f"--output {output} exists (--overwrite replaces it)")
    if not output.parent.is_dir():
        parser.error(f"--output: no such folder: {output.parent}")

    if args.task == "maze":
        return make_mazes(args, parser, output)
    started = time.monotonic()
    try:
        puzzles, solutions, ratings = generate_hard_puzzles(args.num_puzzles, args.min_rating, seed=args.seed,
                                                            num_workers=args.num_workers, progress=True)
    except ValueError as error:  # a rating it cannot reach: nothing is written
        parser.error(str(error))
    minutes = (time.monotonic() - started) / 60
    write_csv(output, puzzles, solutions, ratings, source=f"lstm-trm-generated-seed{args.seed}")
    summary = {
        "output": str(output), "puzzles": len(puzzles), "min_rating": args.min_rating, "seed": args.seed,
        "minutes": round(minutes, 2), "puzzles_per_minute": round(len(puzzles) / max(minutes, 1e-9), 1),
        "workers": args.num_workers, "mean_givens": round(float((puzzles > 0).sum((1, 2)).mean()), 2),
        "rating_percentiles": {str(q): float(np.percentile(ratings, q)) for q in (10, 25, 50, 75, 90, 100)},
    }
    print(f"wrote {len(puzzles)} puzzles to {output} in {minutes:.1f} minutes ({summary['puzzles_per_minute']} per "
          f"minute on {args.num_workers} processes); rating median {np.median(ratings):g}, max {ratings.max()}")
    print(json.dumps(summary))
    return summary


def make_mazes(args, parser, output: Path) -> dict:
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, load_csv_splits
    from modeling_lstm_trm.tasks.maze.maze_hard import write_csv as write_maze_csv
    from modeling_lstm_trm.tasks.maze.mazes import LOOPS, PATH, canonical_form, generate_mazes
    from modeling_lstm_trm.tasks.maze.task import check_loops

    if args.size < 5 or args.min_path_length < 1:
        parser.error("--size must be at least 5 and --min_path_length at least 1")
    try:
        check_loops(args.maze_loops, args.maze_style)
    except ValueError as error:
        parser.error(str(error))
    exclude = set()
    if args.exclude:
        try:
            excluded = load_csv_splits({"exclude": args.exclude})["exclude"]
        except ValueError as error:
            parser.error(f"--exclude: {error}")
        exclude = {canonical_form(q) for q in excluded.questions}
    started = time.monotonic()
    try:
        data = MazeSet(*generate_mazes(args.num_puzzles, args.size, args.min_path_length, seed=args.seed,
                                       exclude=exclude, style=args.maze_style,
                                       loops=LOOPS if args.maze_loops is None else args.maze_loops))
    except ValueError as error:
        parser.error(str(error))
    minutes = (time.monotonic() - started) / 60
    write_maze_csv(output, data, source=f"lstm-trm-generated-seed{args.seed}")
    steps = (data.answers == PATH).sum((1, 2)) + 1
    summary = {"output": str(output), "mazes": len(data), "size": args.size, "min_path_length": args.min_path_length,
               "seed": args.seed, "minutes": round(minutes, 2), "excluded": len(exclude),
               "path_length_percentiles": {str(q): float(np.percentile(steps, q)) for q in (0, 50, 100)}}
    print(f"wrote {len(data)} {args.size}x{args.size} mazes to {output} in {minutes:.1f} minutes; shortest paths of "
          f"{steps.min()} to {steps.max()} steps")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    run_cli(main)
