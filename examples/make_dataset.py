"""Make a puzzle dataset offline, in the shape the training and evaluation scripts read.

    python examples/make_dataset.py --task sudoku --num_puzzles 1000 --min_rating 5 --output hard.csv --seed 1

Sudoku: minimal 9x9 puzzles (no given can be removed without losing uniqueness), each rated by the number of
backtracks a fixed propagate-and-backtrack solver needs (`modeling_lstm_trm.tasks.sudoku.hard_puzzles`), kept when
the rating is at least --min_rating, written in Sudoku-Extreme's CSV shape (`source,question,answer,rating`), so
`--train_file` / `--test_file` and `examples/evaluate_model.py --file` read it like the Hub data. Prints the rating
distribution and the rate; the last line printed is a JSON summary.
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
    parser.add_argument("--task", choices=["sudoku"], default="sudoku")
    parser.add_argument("--num_puzzles", type=int, required=True)
    parser.add_argument("--min_rating", type=int, default=0, help="keep puzzles rated at least this (backtracks)")
    parser.add_argument("--output", required=True, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if args.num_puzzles < 1 or args.num_workers < 1:
        parser.error("--num_puzzles and --num_workers must be at least 1")
    if args.min_rating < 0:
        parser.error("--min_rating must be at least 0")
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        parser.error(f"--output {output} exists (--overwrite replaces it)")
    if not output.parent.is_dir():
        parser.error(f"--output: no such folder: {output.parent}")

    started = time.monotonic()
    puzzles, solutions, ratings = generate_hard_puzzles(args.num_puzzles, args.min_rating, seed=args.seed,
                                                        num_workers=args.num_workers, progress=True)
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


if __name__ == "__main__":
    run_cli(main)
