"""Evaluate a trained LSTM-TRM on Sudoku puzzles.

    python examples/evaluate.py --task sudoku --model D --file ../shared/data/sudoku/easy_50.txt
    python examples/evaluate.py --task sudoku --model D --grid_size 6 --num_puzzles 1000

Solutions of file puzzles are computed by the solver. Scores: exact-puzzle accuracy and accuracy on blank cells at
the step where the model halts, the same after `halt_max_steps` steps, and the mean halting step. Writes
`eval_<name>.json` and a bar chart `eval_<name>.png` (into --output_dir, default the model folder); the last line
printed is the JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# examples/evaluate.py shares its name with the `evaluate` library: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from transformers import AutoModel

from modeling_lstm_trm.sudoku import BOXES, DEFAULT_GIVENS, evaluate_model, generate_puzzles, solve_file


def bar_chart(results: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["exact_accuracy", "exact_accuracy_at_max_steps", "cell_accuracy", "cell_accuracy_at_max_steps"]
    labels = ["exact\n(halting step)", "exact\n(max steps)", "blank cells\n(halting step)", "blank cells\n(max steps)"]
    values = [results[n] for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bars = ax.bar(labels, values, color=["#1f5fbf", "#6f9fdf", "#2f9f5f", "#7fcf9f"])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.3f}", ha="center", fontsize=9)
    ax.set_ylim(0, 1.1)
    ax.set_title(f"{title}: {results['puzzles']} puzzles, mean halting step {results['mean_steps']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["sudoku"], default="sudoku")
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="puzzle file, one per line (0 or . for a blank, // comments)")
    source.add_argument("--grid_size", type=int, choices=sorted(BOXES), help="evaluate on generated puzzles")
    parser.add_argument("--num_puzzles", type=int, default=1000)
    parser.add_argument("--givens", type=int, help="givens of generated puzzles (default 6 / 14 / 30)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of generated puzzles (training used others)")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", help="where to write the JSON and the chart (default: the model folder)")
    args = parser.parse_args(argv)

    model = AutoModel.from_pretrained(args.model, trust_remote_code=True).eval()
    if args.file:
        try:
            data = solve_file(args.file)
        except ValueError as error:
            parser.error(str(error))
        name = Path(args.file).stem
    else:
        givens = args.givens or DEFAULT_GIVENS[args.grid_size]
        data = generate_puzzles(args.num_puzzles, BOXES[args.grid_size], givens, seed=args.seed)
        name = f"generated_{args.grid_size}x{args.grid_size}_{givens}givens"
    if data.size ** 2 != model.config.seq_len:
        parser.error(f"the model solves grids of {model.config.seq_len} cells, these have {data.size ** 2}")
    results = evaluate_model(model, data, batch_size=args.batch_size, progress=True)
    out = Path(args.output_dir or (args.model if Path(args.model).is_dir() else "."))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_{name}.json").write_text(json.dumps(results, indent=2))
    bar_chart(results, name, out / f"eval_{name}.png")
    print(f"wrote {out / f'eval_{name}.json'} and {out / f'eval_{name}.png'}")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
