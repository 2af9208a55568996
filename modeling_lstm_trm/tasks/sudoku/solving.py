"""Sudoku solved in the terminal: the grid with box rules, the trace with the changed cells marked, the verdict."""

from __future__ import annotations

import numpy as np

from .puzzles import is_valid_solution


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


def report_puzzle(index: int, puzzle: np.ndarray, result, k: int, box, trace: bool) -> dict:
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
