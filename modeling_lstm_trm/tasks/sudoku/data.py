"""The Sudoku task's training and held-out puzzles: Sudoku-Extreme-shaped data (a Hub dataset or local folder with
train.csv / test.csv, two CSV files, a TRM prebuilt folder), generated minimal puzzles rated by backtracks (--recipe
hard), or generated puzzles with a fixed number of givens."""

from __future__ import annotations

import os

from ..task import Splits
from .arguments import SudokuArguments
from .hard_puzzles import generate_hard_puzzles
from .puzzles import DEFAULT_GIVENS, SudokuSet, box_for_size, drop_equivalent, train_test_split
from .sudoku_extreme import load_csv_splits, load_trm_folder

EVAL_SUBSAMPLE_SEED = 20251  # one fixed test subset whatever --seed the training uses


def load_splits(args: SudokuArguments, seed: int, is_main: bool) -> Splits:
    """The training puzzles, the held-out puzzles, and what was read: from the dataset flags, generated minimal
    puzzles (--recipe hard), or generated puzzles with a fixed number of givens."""
    size = args.size
    box = box_for_size(size)
    if args.data_dir:
        train = load_trm_folder(args.data_dir, "train", args.subsample_size, seed)
        test = load_trm_folder(args.data_dir, "test", args.eval_subsample, EVAL_SUBSAMPLE_SEED)
    elif args.uses_dataset():
        files, hub = args.csv_files()
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
        return Splits(train_set, drop_equivalent(test_set, train_set),
                      {"source": f"generated minimal, rating >= {rating}"})
    else:
        givens = args.givens or DEFAULT_GIVENS[size]
        if is_main:
            print(f"Generating {args.train_puzzles} training and {args.eval_puzzles} held-out {size}x{size} puzzles "
                  f"with {givens} givens...", flush=True)
        train_set, test_set = train_test_split(args.train_puzzles, args.eval_puzzles, box, givens, seed=seed)
        return Splits(train_set, test_set, {"source": f"generated, {givens} givens"})
    source = args.source_name()
    info = {"source": source, **{f"{name}_{key}": value for name, split in (("train", train), ("test", test))
                                 for key, value in vars(split).items() if key != "data"}}
    if is_main:
        print(f"Data from {source}: {len(train.data)} training puzzles (of {train.rows} rows), {len(test.data)} test "
              f"puzzles (of {test.rows})" + (f"; dropped as invalid: {train.dropped_invalid} + {test.dropped_invalid}"
                                              if args.drop_invalid else ""), flush=True)
    return Splits(train.data, test.data, info)
