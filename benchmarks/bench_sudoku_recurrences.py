"""LSTM recurrence vs TRM recurrence on generated Sudoku at equal parameters and equal CPU time (issue 5).

Each arm is one run of examples/train.py's code path with the grid's preset and a wall-clock budget; the TRM arm's
hidden size is widened until its parameter count matches the LSTM arm's (the gates are the LSTM cell's extra
parameters). Runs are sequential in one process, so each gets the whole machine.

    python benchmarks/bench_sudoku_recurrences.py --grid_sizes 6 9 --minutes 3
"""

import argparse
import importlib.util
import json
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.tasks.sudoku.task import ModelArguments, SudokuArguments, preset_defaults

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_train():
    spec = importlib.util.spec_from_file_location("example_train", EXAMPLES / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def parameters(settings: dict, vocab_size: int, seq_len: int) -> int:
    config = LSTMTRMConfig(vocab_size=vocab_size, seq_len=seq_len, **settings)
    return sum(p.numel() for p in LSTMTRMForPuzzleSolving(config).parameters())


def matched_trm_hidden(preset: dict, vocab_size: int, seq_len: int) -> tuple[int, int, int]:
    """The TRM hidden size whose parameter count is closest to the LSTM arm's (even, for rotary heads), with the
    parameter counts of both arms. `preset` holds the model flags (ModelArguments' names)."""
    settings = {k: v for k, v in preset.items() if k != "forward_dtype"}
    settings.setdefault("puzzle_emb_ndim", 0)

    def count(**changes) -> int:
        return parameters({**settings, **changes}, vocab_size, seq_len)

    target = count(recurrence="lstm")
    step = 2 * settings.get("num_heads", 1) if settings.get("mixer") == "attention" else 2  # an even head width
    best = min(range(settings["hidden_size"], int(settings["hidden_size"] * 1.5) + step, step),
               key=lambda h: abs(count(recurrence="trm", hidden_size=h) - target))
    return best, target, count(recurrence="trm", hidden_size=best)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid_sizes", type=int, nargs="+", default=[6, 9])
    parser.add_argument("--minutes", type=float, default=5.0, help="training wall-clock budget of each arm")
    parser.add_argument("--eval_puzzles", type=int, default=512)
    parser.add_argument("--recipe", type=int, default=6,
                        help="preset whose model and optimizer settings every grid uses (6: the CPU recipe; "
                             "9: the design size, for a GPU)")
    args = parser.parse_args()
    train = load_train()
    rows = []
    for size in args.grid_sizes:
        defaults = preset_defaults(SudokuArguments(grid_size=args.recipe), ModelArguments())
        preset = {k: v for k, v in defaults.items() if k in {f.name for f in fields(ModelArguments)}}
        trm_hidden, lstm_params, trm_params = matched_trm_hidden(preset, size + 1, size * size)
        for recurrence, hidden, params in (("lstm", preset["hidden_size"], lstm_params),
                                           ("trm", trm_hidden, trm_params)):
            with tempfile.TemporaryDirectory() as out:
                results = train.main([
                    "--grid_size", str(size), "--recipe", str(args.recipe), "--recurrence", recurrence,
                    "--hidden_size", str(hidden),
                    "--max_minutes", str(args.minutes), "--eval_puzzles", str(args.eval_puzzles),
                    "--eval_strategy", "no", "--save_strategy", "no", "--output_dir", out, "--disable_tqdm", "true",
                    "--eval_files", "none",
                ])
            held = results["held_out"]
            rows.append({"grid": f"{size}x{size}", "recurrence": recurrence, "hidden": hidden, "params": params,
                         "minutes": args.minutes, "steps": results["train_steps"],
                         "exact": held["exact_accuracy_at_q_halt"], "exact_at_max": held["exact_accuracy"],
                         "mean_steps": held["mean_steps"]})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| grid | recurrence | hidden | params | train minutes | steps | exact (halting step) | "
          "exact (max steps) | mean halting step |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['grid']} | {r['recurrence']} | {r['hidden']} | {r['params'] / 1e6:.3f}M | {r['minutes']} | "
              f"{r['steps']} | {r['exact']:.3f} | {r['exact_at_max']:.3f} | {r['mean_steps']:.2f} |")


if __name__ == "__main__":
    main()
