"""How hard and how fast: the backtrack rating of generated minimal 9x9 puzzles beside Norvig's `top95` and
`hardest` (rated by the same solver), and the generator's rate on this machine (issue 11).

    python benchmarks/bench_sudoku_generator.py --num_puzzles 2000 --num_workers 2

The rate is measured for minimal puzzles of any rating; the rate at a threshold R is that times the fraction rated
at least R (the generator keeps a puzzle exactly when its rating is at least R, so this is what --min_rating R
gives, without the cost of measuring every threshold).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modeling_lstm_trm.tasks.sudoku.hard_puzzles import generate_hard_puzzles, rate
from modeling_lstm_trm.tasks.sudoku.puzzles import parse_puzzles

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sudoku"
THRESHOLDS = (1, 3, 5, 10, 20, 40)


def describe(name: str, ratings: np.ndarray, givens: np.ndarray) -> dict:
    return {"set": name, "puzzles": len(ratings), "mean_givens": round(float(givens.mean()), 1),
            **{f"p{q}": float(np.percentile(ratings, q)) for q in (10, 50, 90)}, "max": int(ratings.max()),
            **{f">={t}": round(float((ratings >= t).mean()), 3) for t in THRESHOLDS}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_puzzles", type=int, default=2000)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    rows = []
    for name in ("easy_50", "hardest", "top95"):
        puzzles = parse_puzzles(SHARED / f"{name}.txt")
        rows.append(describe(name, np.array([rate(p) for p in puzzles]), (puzzles > 0).sum((1, 2))))
    started = time.monotonic()
    puzzles, _, ratings = generate_hard_puzzles(args.num_puzzles, 0, seed=args.seed, num_workers=args.num_workers,
                                                progress=True)
    per_minute = args.num_puzzles / ((time.monotonic() - started) / 60)
    rows.append(describe("generated minimal", ratings, (puzzles > 0).sum((1, 2))))
    for row in rows:
        print(json.dumps(row))
    header = " | ".join(f"rated >= {t}" for t in THRESHOLDS)
    print(f"\n| set | puzzles | mean givens | rating p10 / p50 / p90 / max | {header} |")
    print("|---|---|---|---|" + "---|" * len(THRESHOLDS))
    for r in rows:
        shares = " | ".join(f"{r[f'>={t}']:.3f}" for t in THRESHOLDS)
        print(f"| {r['set']} | {r['puzzles']} | {r['mean_givens']} | {r['p10']:g} / {r['p50']:g} / {r['p90']:g} / "
              f"{r['max']} | {shares} |")
    print(f"\nminimal puzzles per minute on {args.num_workers} processes: {per_minute:.0f}; at --min_rating R: "
          + ", ".join(f"R={t}: {per_minute * rows[-1][f'>={t}']:.0f}" for t in THRESHOLDS))


if __name__ == "__main__":
    main()
