"""Solve Sudoku puzzles with a trained LSTM-TRM and watch the answer form, supervision step by supervision step.

    python examples/solve.py --model outputs/lstm-trm-sudoku-6x6 "1.3...5..2...."     # one puzzle
    python examples/solve.py --model D --file puzzles.txt                            # a file, one per line
    python examples/solve.py --model D PUZZLE --trace --png trace.png                # the reasoning trace
    python examples/solve.py --model D --file hard.csv --num_trajectories 8 --checker --png trace.png
    python examples/solve.py --model outputs/lstm-trm-maze-cpu --file mazes.csv --png maze.png   # a maze model
    python examples/solve.py --task arc --model outputs/lstm-trm-arc-smoke --data_dir ../shared/data/arc \
        --split training 0520fde7 --png arc.png                                      # ARC tasks the model trained on

With --task arc (the default for an ARC model), the arguments are task ids of --split in --data_dir; every test input
is solved under each version of its task the model was trained on, and the versions vote: the two attempts are
printed beside the truth (where the split has solutions), and --png draws input, attempts and truth as ARC colours.

A puzzle is N*N characters, row by row, with 0 or . for a blank; --file reads a file of such lines or a CSV file of
Sudoku-Extreme's shape (its questions). For each puzzle it prints the solved grid, whether it is a valid solution
that keeps the givens, and the supervision step at which the model halted. With --num_trajectories K, each puzzle
is solved K times from noisy starts and the Q head picks one (the trace shows that trajectory); --checker also
prints the pick among trajectories whose answer is a valid grid keeping the givens (our addition, not TRM's).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.loading import load_model, task_of
from modeling_lstm_trm.tasks.sudoku.puzzles import BOXES, answer_checker, is_valid_solution, parse_puzzles
from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import load_csv_splits


def format_grid(grid: np.ndarray, box, marks: np.ndarray | None = None) -> str:
    """The grid as text with box rules; cells in `marks` are shown as [d]."""
    n = grid.shape[0]
    br, bc = box
    lines = []
    for r in range(n):
        if r and r % br == 0:
            lines.append("+".join(["-" * (3 * bc)] * br))
        cells = []
        for c in range(n):
            text = str(grid[r, c]) if grid[r, c] else "."
            cells.append(f"[{text}]" if marks is not None and marks[r, c] else f" {text} ")
            if c % bc == bc - 1 and c < n - 1:
                cells.append("|")
        lines.append("".join(cells))
    return "\n".join(lines)


def draw_trace(puzzle: np.ndarray, trace: np.ndarray, solution_ok: list[bool], box, path: str,
               title: str = "") -> None:
    """One panel per supervision step: givens in black, filled digits in blue, cells that changed since the previous
    step on a yellow ground; `title` above them (which trajectory this is)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = puzzle.shape[0]
    steps = len(trace)
    cols = min(steps, 4)
    rows = -(-steps // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= steps:
            continue
        grid = trace[k]
        changed = grid != (trace[k - 1] if k else puzzle)
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        for r in range(n):
            for c in range(n):
                if changed[r, c] and puzzle[r, c] == 0:
                    ax.add_patch(plt.Rectangle((c, r), 1, 1, color="#fff3a0"))
                given = puzzle[r, c] != 0
                ax.text(c + 0.5, r + 0.55, str(grid[r, c]), ha="center", va="center", fontsize=140 / n,
                        color="black" if given else "#1f5fbf", fontweight="bold" if given else "normal")
        for i in range(n + 1):
            ax.plot([0, n], [i, i], color="black", lw=2 if i % box[0] == 0 else 0.4)
            ax.plot([i, i], [0, n], color="black", lw=2 if i % box[1] == 0 else 0.4)
        ax.set_title(f"step {k + 1}" + (" (valid)" if solution_ok[k] else ""), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("puzzles", nargs="*", help="puzzles, N*N characters each (0 or . for a blank)")
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id)")
    parser.add_argument("--file", help="a file of puzzles, one per line (// starts a comment)")
    parser.add_argument("--trace", action="store_true", help="print the grid after every supervision step")
    parser.add_argument("--png", help="draw the trace of the first puzzle into this PNG file")
    parser.add_argument("--max_steps", type=int, help="supervision steps at most (default: the model's)")
    parser.add_argument("--batch_size", type=int, default=256, help="puzzles solved at once")
    parser.add_argument("--num_trajectories", type=int, default=1, help="noisy trajectories per puzzle")
    parser.add_argument("--noise_scale", type=float, default=0.5, help="std of their initial noise")
    parser.add_argument("--checker", action="store_true", help="also pick a trajectory whose answer checks out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trajectories' noise")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    parser.add_argument("--task", choices=("sudoku", "maze", "arc"),
                        help="what the model solves (default: the task it was trained on, else sudoku)")
    parser.add_argument("--data_dir", help="--task arc: the folder of the ARC Prize files")
    parser.add_argument("--split", help="--task arc: the split the task ids belong to (default: the run's test split)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.num_trajectories < 1 or (args.max_steps is not None and args.max_steps < 1):
        parser.error("--batch_size, --num_trajectories and --max_steps must be at least 1")
    if not 0 <= args.noise_scale < math.inf:
        parser.error(f"--noise_scale must be a finite number >= 0, got {args.noise_scale}")
    try:
        task = task_of(args.model, args.task)
    except ValueError as error:
        parser.error(str(error))
    if task == "lm":
        parser.error(f"{args.model} is a model for lm: it does not solve puzzles")
    if task == "arc":
        return solve_arc(args, parser)
    if not args.puzzles and not args.file:
        parser.error("give a puzzle or --file")
    if args.file and not Path(args.file).is_file():
        parser.error(f"--file: no such file: {args.file}")
    if task == "maze":
        return solve_mazes(args, parser)

    try:
        if args.file and args.file.endswith(".csv"):
            grids = load_csv_splits({"test": args.file})["test"].data.puzzles
        else:
            grids = parse_puzzles(args.file) if args.file else parse_puzzles(args.puzzles)
    except ValueError as error:
        parser.error(str(error))
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    n = grids.shape[-1]
    if n * n != model.config.seq_len:
        parser.error(f"the model solves {int(model.config.seq_len ** 0.5)}x{int(model.config.seq_len ** 0.5)} grids,"
                     f" these puzzles are {n}x{n}")
    box = BOXES[n]
    want_trace = args.trace or args.png is not None
    generator = torch.Generator().manual_seed(args.seed)
    reports, first_trace, first_title = [], None, ""
    for begin in range(0, len(grids), args.batch_size):
        batch = grids[begin:begin + args.batch_size]
        result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=args.max_steps,
                             return_trace=want_trace, num_trajectories=args.num_trajectories,
                             noise_scale=args.noise_scale, generator=generator,
                             answer_checker=answer_checker(box) if args.checker else None)
        if first_trace is None and want_trace:
            first_trace = result.trace[: int(result.halted_at[0]), 0].numpy().reshape(-1, n, n)
            if result.trajectory is not None:
                first_title = f"trajectory {int(result.trajectory[0])} of {args.num_trajectories} (the Q head's pick)"
        for k, puzzle in enumerate(batch):
            reports.append(report(begin + k, puzzle, result, k, box, args.trace))
    if args.png:
        draw_trace(grids[0], first_trace, [is_valid_solution(g, grids[0], box) for g in first_trace], box, args.png,
                   first_title)
        print(f"\ntrace drawn in {args.png}")
    return reports


def report(index: int, puzzle: np.ndarray, result, k: int, box, trace: bool) -> dict:
    """Print puzzle `index` (row k of `result`): the puzzle, its trace if asked, the solution, whether it is valid."""
    n = puzzle.shape[0]
    solved = result.predictions[k].numpy().reshape(n, n)
    valid = is_valid_solution(solved, puzzle, box)
    halted = int(result.halted_at[k])
    print(f"\nPuzzle {index + 1}:\n{format_grid(puzzle, box)}")
    if trace:
        previous = puzzle
        for step in range(halted):
            grid = result.trace[step, k].numpy().reshape(n, n)
            print(f"\nafter supervision step {step + 1} ([d] = changed):")
            print(format_grid(grid, box, marks=(grid != previous) & (puzzle == 0)))
            previous = grid
    chosen = "" if result.trajectory is None else f", trajectory {int(result.trajectory[k])} (the Q head's pick)"
    print(f"\nSolution (halted at step {halted}{chosen}):\n{format_grid(solved, box)}")
    print("valid and consistent with the givens" if valid else "NOT a valid solution")
    out = {"valid": valid, "halted_at": halted, "solution": "".join(map(str, solved.reshape(-1)))}
    if result.trajectory is not None:
        out["trajectory"] = int(result.trajectory[k])
    if result.checked_predictions is not None:
        checked = result.checked_predictions[k].numpy().reshape(n, n)
        out["checker_valid"] = is_valid_solution(checked, puzzle, box)
        if not np.array_equal(checked, solved):
            print(f"the checker's pick (a trajectory whose answer checks out) differs:\n{format_grid(checked, box)}")
        print("the checker found a valid trajectory" if out["checker_valid"] else "no trajectory's answer checks out")
    return out


def draw_maze_trace(question: np.ndarray, trace: np.ndarray, valid: list[bool], path: str) -> None:
    """One panel per supervision step: walls black, open cells white, S green, G red, the cells marked as path
    blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(["#ffffff", "#202020", "#ffffff", "#2f9f5f", "#cf3f3f", "#3f7fdf"])  # pad # _ S G o
    steps = len(trace)
    cols = min(steps, 4)
    rows = -(-steps // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 3.0 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < steps:
            shown = np.where((trace[k] == 5) & ~np.isin(question, (3, 4)), 5, question)  # the maze, plus its path
            ax.imshow(shown, cmap=colours, vmin=0, vmax=5, interpolation="nearest")
            ax.set_title(f"step {k + 1}" + (" (shortest path)" if valid[k] else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def solve_mazes(args, parser) -> list[dict]:
    """Mazes from --file (Maze-Hard's CSV shape) or the arguments (N*N characters of `# SGo`): the path found, whether
    it is a shortest path, and the halting step; --png draws the first maze after every supervision step."""
    from modeling_lstm_trm.tasks.maze.maze_hard import load_csv_splits as load_maze_csv
    from modeling_lstm_trm.tasks.maze.mazes import canvas_for, pad_to_canvas, path_problem, to_text, to_tokens

    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    try:
        if args.file:
            questions = load_maze_csv({"test": args.file})["test"].questions
        else:
            side = round(len(args.puzzles[0]) ** 0.5)
            questions = np.stack([to_tokens(text, side, f"maze {k + 1}", "maze")
                                  for k, text in enumerate(args.puzzles)])
        size = questions.shape[-1]
        canvas = canvas_for(model.config, size)
    except ValueError as error:
        parser.error(str(error))
    padded = pad_to_canvas(questions, canvas)  # walls around a smaller maze: the model's canvas holds it
    reports = []
    for begin in range(0, len(questions), args.batch_size):
        batch = padded[begin:begin + args.batch_size]
        result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=args.max_steps,
                             return_trace=True, run_to_max=True)
        trace = result.trace.numpy().reshape(result.trace.shape[0], len(batch), canvas, canvas)[..., :size, :size]
        for k, question in enumerate(questions[begin:begin + args.batch_size]):
            answer = trace[-1, k]
            problem = path_problem(question, answer)
            text = to_text(answer)
            print(f"\nMaze {begin + k + 1} after {result.trace.shape[0]} steps:")
            print("\n".join(text[r * size:(r + 1) * size] for r in range(size)))
            print("a shortest path from S to G" if problem is None else f"NOT a shortest path: {problem}")
            reports.append({"valid_shortest_path": problem is None, "answer": text,
                            "halted_at": int(result.halted_at[k])})
        if begin == 0 and args.png:
            steps = trace[:, 0]
            draw_maze_trace(questions[0], steps, [path_problem(questions[0], g) is None for g in steps], args.png)
            print(f"\ntrace drawn in {args.png}")
    return reports


ARC_COLOURS = ["#000000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaaaaa", "#f012be", "#ff851b", "#7fdbff",
               "#870c25"]  # the ARC palette, colours 0-9


def draw_arc(rows: list[tuple[str, list[tuple[str, np.ndarray | None]]]], path: str) -> None:
    """One row of panels per test input (its title, then (caption, grid) panels), in the ARC palette."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.8 * len(rows)), squeeze=False)
    for (title, panels), line in zip(rows, axes):
        for ax, (caption, grid) in zip(line, panels + [("", None)] * (cols - len(panels))):
            ax.set_xticks([])
            ax.set_yticks([])
            if grid is None:
                ax.axis("off")
                if caption:
                    ax.text(0.5, 0.5, "none", ha="center", va="center")
                    ax.set_title(caption, fontsize=9)
                continue
            ax.imshow(grid, cmap=ListedColormap(ARC_COLOURS), vmin=0, vmax=9, interpolation="nearest")
            ax.set_title(caption, fontsize=9)
        line[0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def solve_arc(args, parser) -> list[dict]:
    """ARC task ids: each test input under every version of its task the model knows, voted; prints the two attempts
    and, where the truth is known, whether one is right; --png draws them."""
    from modeling_lstm_trm.tasks.arc.arc_dataset import trained_versions
    from modeling_lstm_trm.tasks.arc.evaluation import predict_test_inputs
    from modeling_lstm_trm.tasks.arc.voting import vote

    if not args.puzzles:
        parser.error("give the ids of the ARC tasks to solve")
    try:
        versions, side, split = trained_versions(args.model, args.data_dir, args.split)
    except ValueError as error:
        parser.error(str(error))
    unknown = [t for t in args.puzzles if t not in versions.tasks]
    if unknown:
        parser.error(f"the model was not trained on task {unknown[0]} (split {split}): its puzzle identifiers know "
                     f"{len(versions.tasks)} tasks of that split")
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    candidates = predict_test_inputs(model, versions, args.puzzles, side, args.batch_size, progress=False)
    reports, rows = [], []
    for task_id in args.puzzles:
        for index, (question, truth) in enumerate(versions.tasks[task_id].test):
            ranked = vote(candidates[(task_id, index)])[:2]
            attempts = ranked + [None] * (2 - len(ranked))
            right = None if truth is None else any(g is not None and g.shape == truth.shape and (g == truth).all()
                                                   for g in attempts)
            verdict = "truth unknown" if right is None else "solved" if right else "not solved"
            print(f"\nTask {task_id}, test input {index + 1}: {verdict} "
                  f"({len(candidates[(task_id, index)])} versions voted)")
            for k, grid in enumerate(attempts):
                print(f"attempt {k + 1}: " + ("none" if grid is None else
                                            " / ".join("".join(map(str, row)) for row in grid)))
            reports.append({"task": task_id, "test_input": index, "solved": right,
                            "attempts": [None if g is None else g.tolist() for g in attempts]})
            panels = [("input", question), ("attempt 1", attempts[0]), ("attempt 2", attempts[1])]
            rows.append((f"{task_id} #{index + 1}" + ("" if right is None else f"\n{verdict}"),
                         panels + ([] if truth is None else [("truth", truth)])))
    if args.png:
        draw_arc(rows, args.png)
        print(f"\nanswers drawn in {args.png}")
    return reports


if __name__ == "__main__":
    run_cli(main)
