"""Sudoku drawn: the reasoning trace (a panel per supervision step) and the accuracy chart of an evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..task import panel_grid, save_figure


def draw_trace(puzzle: np.ndarray, trace: np.ndarray, solution_ok: list[bool], box, path: str,
               title: str = "") -> None:
    """One panel per supervision step: givens in black, filled digits in blue, cells that changed since the previous
    step on a yellow ground; `title` above them (which trajectory this is)."""
    from matplotlib.patches import Rectangle

    n = puzzle.shape[0]
    fig, axes = panel_grid(len(trace))
    for k, ax in enumerate(axes):
        grid = trace[k]
        changed = grid != (trace[k - 1] if k else puzzle)
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        for r in range(n):
            for c in range(n):
                if changed[r, c] and puzzle[r, c] == 0:
                    ax.add_patch(Rectangle((c, r), 1, 1, color="#fff3a0"))
                given = puzzle[r, c] != 0
                ax.text(c + 0.5, r + 0.55, str(grid[r, c]), ha="center", va="center", fontsize=140 / n,
                        color="black" if given else "#1f5fbf", fontweight="bold" if given else "normal")
        for i in range(n + 1):
            ax.plot([0, n], [i, i], color="black", lw=2 if i % box[0] == 0 else 0.4)
            ax.plot([i, i], [0, n], color="black", lw=2 if i % box[1] == 0 else 0.4)
        ax.set_title(f"step {k + 1}" + (" (valid)" if solution_ok[k] else ""), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path, dpi=120)


def accuracy_chart(results: dict, title: str, path: Path) -> None:
    """Exact accuracy after each depth and at the Q head's halt within it (a line per rule when several depths were
    asked, else bars), with the K-trajectory picks as points at halt_max_steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    depths = results.get("by_max_steps") or {str(results["max_steps"]): results}
    steps = [int(d) for d in depths]
    for key, label, color in (("exact_accuracy", "after max steps (TRM's convention)", "#1f5fbf"),
                              ("exact_accuracy_at_q_halt", "at the Q head's halt", "#2f9f5f")):
        values = [depths[d][key] for d in depths]
        ax.plot(steps, values, "o-", color=color, label=label)
        for x, y in zip(steps, values):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    trajectories = results.get("trajectories")
    if trajectories:
        k = trajectories["num_trajectories"]
        for rule, marker, label in (("q_head", "s", f"K={k} trajectories, Q head picks"),
                                    ("checker", "^", f"K={k} trajectories, checker picks (not TRM's)")):
            ax.plot([trajectories["max_steps"]], [trajectories[rule]["exact_accuracy"]], marker, ms=8, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(x) for x in steps])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("supervision steps at test time")
    ax.set_ylabel("exact-puzzle accuracy")
    ax.set_title(f"{title}: {results['puzzles']} puzzles", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    save_figure(fig, path)
