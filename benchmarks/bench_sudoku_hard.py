"""LSTM vs TRM recurrence on hard 9x9 Sudoku at equal parameters and equal training time (issue 11).

Both arms train at the same time, one process and one thread each (so each gets one core of the same machine under
the same load), with `--recipe hard` on the same training CSV, the TRM arm's hidden size widened to match the LSTM
arm's parameter count. Then each model is evaluated on the held-out CSV and on `top95` / `hardest`: exact accuracy
at the Q head's halt, after `halt_max_steps`, after 4x that, and with K trajectories under each selection rule (the
Q head's pick, and the checker's pick of a valid grid: never mixed).

    python examples/make_dataset.py --num_puzzles 4000 --min_rating 0 --seed 7 --output train.csv
    python examples/make_dataset.py --num_puzzles 1000 --min_rating 5 --seed 101 --output hard_test.csv
    python benchmarks/bench_sudoku_hard.py --train_file train.csv --test_file hard_test.csv --minutes 30 --out runs/

`--phase train` or `--phase evaluate` runs one half (the evaluation reads the models from --out).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data" / "sudoku"


def matched_trm_hidden() -> tuple[int, int, int]:
    spec = importlib.util.spec_from_file_location("bench_sudoku_recurrences", ROOT / "benchmarks" /
                                                  "bench_sudoku_recurrences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from dataclasses import fields

    from modeling_lstm_trm.tasks.sudoku.task import ModelArguments, SudokuArguments, preset_defaults

    defaults = preset_defaults(SudokuArguments(recipe="hard"), ModelArguments())
    preset = {k: v for k, v in defaults.items() if k in {f.name for f in fields(ModelArguments)}}
    return (preset["hidden_size"], *module.matched_trm_hidden(preset, 10, 81))


def train(args) -> None:
    lstm_hidden, trm_hidden, lstm_params, trm_params = matched_trm_hidden()
    print(f"lstm hidden {lstm_hidden}: {lstm_params:,} parameters; trm hidden {trm_hidden}: {trm_params:,}", flush=True)
    runs = []
    for recurrence, hidden in (("lstm", lstm_hidden), ("trm", trm_hidden)):
        out = Path(args.out) / recurrence
        command = [sys.executable, str(ROOT / "examples" / "train.py"), "--recipe", "hard",
                   "--train_file", args.train_file, "--test_file", args.test_file, "--eval_subsample", "200",
                   "--recurrence", recurrence, "--hidden_size", str(hidden), "--max_minutes", str(args.minutes),
                   "--eval_steps", str(args.eval_steps), "--save_steps", str(args.eval_steps), "--num_threads", "1",
                   "--eval_files", "none", "--output_dir", str(out), "--disable_tqdm", "true"]
        log = open(Path(args.out) / f"{recurrence}.log", "w")
        runs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                                                                                         "OMP_NUM_THREADS": "1"}))
    codes = [run.wait() for run in runs]
    if any(codes):
        raise SystemExit(f"training failed (exit codes {codes}); see {args.out}/*.log")


def evaluations(model: Path) -> list[dict]:
    """The periodic held-out evaluations of a run: from training_run.json, else the newest checkpoint's state."""
    run = json.loads((model / "training_run.json").read_text())
    if run.get("evaluations"):
        return run["evaluations"]
    states = sorted(model.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    history = json.loads(states[-1].read_text())["log_history"] if states else []
    return [entry for entry in history if "eval_exact_accuracy" in entry]


def plot_curves(out: Path, second: tuple[str, str] = ("eval_cell_accuracy", "blank cells"),
                ylabel: str = "held-out accuracy (200-puzzle subset)",
                title: str = "Hard 9x9 Sudoku: accuracy against training time",
                filename: str = "accuracy_vs_time.png") -> None:
    """Held-out exact accuracy and a `second` metric (its key and label) against training minutes, both arms (the
    folders `out`/lstm and `out`/trm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = second
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for recurrence, color in (("lstm", "#1f5fbf"), ("trm", "#bf5f1f")):
        points = [(e["eval_minutes"], e["eval_exact_accuracy"], e.get(key)) for e in
                  evaluations(out / recurrence) if "eval_minutes" in e]
        if points:
            minutes, exact, other = zip(*points)
            ax.plot(minutes, exact, "o-", color=color, label=f"{recurrence}: exact")
            ax.plot(minutes, other, "s--", color=color, alpha=0.6, label=f"{recurrence}: {label}")
    ax.set_xlabel("training minutes (one core each)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / filename, dpi=110)
    plt.close(fig)
    print(f"wrote {out / filename}")


def held_out_file(args) -> str:
    """The test CSV without puzzles that the augmentations might turn into a training puzzle (for 9x9, a collision
    of the symmetry invariant counts as one), written beside the runs."""
    from modeling_lstm_trm.tasks.sudoku.puzzles import drop_equivalent
    from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import load_csv_splits, write_csv

    splits = load_csv_splits({"train": args.train_file, "test": args.test_file})
    kept = drop_equivalent(splits["test"].data, splits["train"].data)
    path = Path(args.out) / "held_out.csv"
    write_csv(path, kept.puzzles, kept.solutions, kept.ratings, source=f"{Path(args.test_file).name}, held out")
    print(f"held-out: {len(kept)} of {len(splits['test'].data)} test puzzles (the rest may be equivalent to training "
          "puzzles)", flush=True)
    return str(path)


def evaluate(args) -> None:
    """Each model on each set: depths halt_max_steps and 4x that (Q-halt beside), then K trajectories (on a seeded
    subset of --trajectory_puzzles held-out puzzles: K x halt_max_steps steps a puzzle is the costly part on a CPU)."""
    spec = importlib.util.spec_from_file_location("example_evaluate_model", ROOT / "examples" / "evaluate_model.py")
    evaluate_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate_model)
    files = {"held_out": held_out_file(args), "top95": str(SHARED / "top95.txt"),
             "hardest": str(SHARED / "hardest.txt")}
    rows = []
    for recurrence in ("lstm", "trm"):
        model = Path(args.out) / recurrence
        steps = json.loads((model / "config.json").read_text())["halt_max_steps"]
        run = json.loads((model / "training_run.json").read_text())
        for name, path in files.items():
            common = ["--model", str(model), "--file", path, "--output_dir", str(Path(args.out) / "eval" / recurrence)]
            depth = evaluate_model.main(common + ["--max_steps", str(steps), str(4 * steps)])
            subset = ["--eval_subsample", str(args.trajectory_puzzles)] if path.endswith(".csv") else []
            several = evaluate_model.main(common + subset + ["--num_trajectories", str(args.trajectories)])
            rows.append({"recurrence": recurrence, "data": name, "puzzles": depth["puzzles"],
                         "steps": run.get("steps"), "q_halt": depth["exact_accuracy_at_q_halt"],
                         "at_max": depth["by_max_steps"][str(steps)]["exact_accuracy"],
                         "at_4x": depth["by_max_steps"][str(4 * steps)]["exact_accuracy"],
                         "cells_at_max": depth["cell_accuracy"],
                         "cells_at_4x": depth["by_max_steps"][str(4 * steps)]["cell_accuracy"],
                         "k_puzzles": several["puzzles"], "k_at_max": several["exact_accuracy"],
                         "k_q": several["trajectories"]["q_head"]["exact_accuracy"],
                         "k_checker": several["trajectories"]["checker"]["exact_accuracy"],
                         "k_q_cells": several["trajectories"]["q_head"]["cell_accuracy"],
                         "k_checker_cells": several["trajectories"]["checker"]["cell_accuracy"]})
            print(json.dumps(rows[-1]), flush=True)
    plot_curves(Path(args.out))
    k = args.trajectories
    print(f"\n| recurrence | data | puzzles | training steps | exact at Q halt | exact at halt_max_steps | "
          f"exact at 4x | blank cells at halt_max_steps / 4x | K={k}: puzzles, exact with K=1 | K={k}, Q head picks |"
          f" K={k}, checker picks |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recurrence']} | {r['data']} | {r['puzzles']} | {r['steps']} | {r['q_halt']:.3f} | "
              f"{r['at_max']:.3f} | {r['at_4x']:.3f} | {r['cells_at_max']:.3f} / {r['cells_at_4x']:.3f} | "
              f"{r['k_puzzles']}, {r['k_at_max']:.3f} | {r['k_q']:.3f} (cells {r['k_q_cells']:.3f}) | "
              f"{r['k_checker']:.3f} (cells {r['k_checker_cells']:.3f}) |")

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", required=True)
    parser.add_argument("--test_file", required=True)
    parser.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget of each arm")
    parser.add_argument("--eval_steps", type=int, default=250)
    parser.add_argument("--trajectories", type=int, default=8)
    parser.add_argument("--trajectory_puzzles", type=int, default=200,
                        help="held-out puzzles (a seeded subset) solved with K trajectories")
    parser.add_argument("--out", required=True, help="folder for the two models, their logs and evaluations")
    parser.add_argument("--phase", choices=["all", "train", "evaluate"], default="all")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.phase in ("all", "train"):
        train(args)
    if args.phase in ("all", "evaluate"):
        evaluate(args)


if __name__ == "__main__":
    main()
