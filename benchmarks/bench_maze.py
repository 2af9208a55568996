"""LSTM-TRM on mazes (issue 12): the CPU preset trained with each recurrence at equal parameters and equal time, then
each model on mazes larger than it trained on.

Both arms train at the same time, one process and one thread each (each gets one core of the same machine under the
same load), with `--recipe cpu` (generated mazes, the held-out set no symmetry of a training maze), the TRM arm's
hidden size widened to match the LSTM arm's parameter count. Then each model reads generated mazes of every side in
--sizes (the preset's conv mixer reads any side as it is; an MLP or attention model reads them padded with walls to
its canvas, and no larger), shortest paths of at least 0.1 x side^2 steps: exact and valid-shortest-path accuracy
after halt_max_steps.

    python benchmarks/bench_maze.py --minutes 15 --out runs/maze
    python benchmarks/bench_maze.py --phase sizes --out runs/maze     # only the size table, from trained models
"""

import argparse
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_sudoku_hard import plot_curves  # noqa: E402  (one accuracy-against-time plot for the benchmarks)
from bench_sudoku_recurrences import matched_trm_hidden  # noqa: E402  (one parameter matcher for the benchmarks)

RECURRENCES = ("lstm", "trm")


def cpu_preset() -> tuple[dict, int]:
    """The CPU preset's model flags and its canvas side."""
    from modeling_lstm_trm.tasks.maze.task import MazeArguments, ModelArguments, preset_defaults

    defaults = preset_defaults(MazeArguments(recipe="cpu"), ModelArguments())
    model_flags = {k: v for k, v in defaults.items() if k in {f.name for f in fields(ModelArguments)}}
    return model_flags, defaults.get("canvas_size") or defaults["maze_size"]


def train(args) -> None:
    model_flags, canvas = cpu_preset()
    trm_hidden, lstm_params, trm_params = matched_trm_hidden(model_flags, 6, canvas * canvas)
    hidden = {"lstm": model_flags["hidden_size"], "trm": trm_hidden}
    print(f"lstm hidden {hidden['lstm']}: {lstm_params:,} parameters; trm hidden {trm_hidden}: {trm_params:,}",
          flush=True)
    train_side_by_side(Path(args.out), {
        recurrence: ["--task", "maze", "--recipe", "cpu", "--recurrence", recurrence, "--hidden_size",
                     str(hidden[recurrence]), "--max_minutes", str(args.minutes), *args.train_args]
        for recurrence in RECURRENCES})


def train_side_by_side(out: Path, arms: dict[str, list[str]]) -> None:
    """examples/train.py once per arm (its flags), all at the same time, one process and one thread each (equal CPU
    time on the same machine under the same load), each into out/<arm> with its log out/<arm>.log."""
    runs = []
    for arm, flags in arms.items():
        command = [sys.executable, str(ROOT / "examples" / "train.py"), *flags, "--num_threads", "1", "--output_dir",
                   str(out / arm), "--disable_tqdm", "true", "--overwrite_output_dir"]
        log = open(out / f"{arm}.log", "w")
        runs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"}))
    codes = [run.wait() for run in runs]
    if any(codes):
        raise SystemExit(f"training failed (exit codes {codes}); see {out}/*.log")


def sizes(args) -> list[dict]:
    """Each trained model on generated mazes of each side, padded to its canvas."""
    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet
    from modeling_lstm_trm.tasks.maze.mazes import canvas_for, evaluate_mazes, generate_mazes, long_path

    rows = []
    for recurrence in RECURRENCES:
        folder = Path(args.out) / recurrence
        model = LSTMTRMForPuzzleSolving.from_pretrained(folder).eval()
        canvas = round(model.config.seq_len ** 0.5)
        run = json.loads((folder / "training_run.json").read_text())
        trained = run.get("data", {}).get("maze_size", canvas)
        for side in args.sizes:
            try:
                canvas_for(model.config, side)
            except ValueError:  # larger than an MLP or attention model's canvas: it cannot read them
                continue
            try:
                mazes = MazeSet(*generate_mazes(args.num_mazes, side, long_path(side), seed=args.seed + side))
            except ValueError as error:  # small sides hold few distinct mazes
                print(f"side {side}: {error}", flush=True)
                continue
            read = mazes.for_model(model.config)
            scores = evaluate_mazes(model, read.questions, read.answers)
            rows.append({"recurrence": recurrence, "trained_on": trained, "read_as": read.size, "side": side,
                         "min_path_length": long_path(side), **scores})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| recurrence | trained on | maze read | maze side | shortest path >= | mazes | exact | valid shortest "
          "path |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        read = "as it is" if r["read_as"] == r["side"] else f"on a {r['read_as']}x{r['read_as']} canvas"
        print(f"| {r['recurrence']} | {r['trained_on']}x{r['trained_on']} | {read} | "
              f"{r['side']} | {r['min_path_length']} | {r['mazes']} | {r['exact_accuracy']:.3f} | "
              f"{r['valid_shortest_path_accuracy']:.3f} |")
    (Path(args.out) / "sizes.json").write_text(json.dumps(rows, indent=2))
    return rows


def summary(args) -> None:
    """Held-out scores of both arms (from their eval_results.json) and the accuracy-against-time plot."""
    from modeling_lstm_trm import LSTMTRMForPuzzleSolving

    print("\n| recurrence | parameters | training steps | minutes | held-out mazes | exact | valid shortest path | "
          "exact at Q halt |\n|---|---|---|---|---|---|---|---|")
    for recurrence in RECURRENCES:
        folder = Path(args.out) / recurrence
        results = json.loads((folder / "eval_results.json").read_text())
        params = sum(p.numel() for p in LSTMTRMForPuzzleSolving.from_pretrained(folder).parameters())
        held = results["held_out"]
        print(f"| {recurrence} | {params:,} | {results['train_steps']} | "
              f"{results['train_minutes']} | {held['mazes']} | {held['exact_accuracy']:.3f} | "
              f"{held['valid_shortest_path_accuracy']:.3f} | {held['exact_accuracy_at_q_halt']:.3f} |")
    plot_curves(Path(args.out), second=("eval_valid_shortest_path_accuracy", "valid shortest path"),
                ylabel="held-out accuracy (EMA weights)", title="Mazes, CPU preset: accuracy against training time",
                filename="maze_accuracy_vs_time.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget of each arm")
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 11, 13, 15, 19])
    parser.add_argument("--num_mazes", type=int, default=200, help="generated mazes per side")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--out", required=True, help="folder for the two models, their logs and the tables")
    parser.add_argument("--phase", choices=["all", "train", "sizes"], default="all")
    parser.add_argument("train_args", nargs="*", help="after --: more flags for examples/train.py (both arms)")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.phase in ("all", "train"):
        train(args)
    summary(args)
    sizes(args)


if __name__ == "__main__":
    main()
