"""ARC evaluation as the competition scores it: every test input is predicted under each augmented version of its
task, each prediction is cropped at the end-of-grid marker and mapped back by the inverse augmentation, and the
versions vote. Two attempts per test input; a task scores the fraction of its test inputs that an attempt got right.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .arc_data import ArcTask

EMPTY_ATTEMPT = [[0]]  # the competition wants two attempts for every test input


def vote(candidates: list[tuple[np.ndarray | None, float]]) -> list[np.ndarray]:
    """Distinct grids ranked by how many versions predicted them, ties broken by their mean Q-head confidence (then by
    first appearance); a version whose prediction could not be cropped (None) does not vote."""
    tally: dict[tuple, list] = {}
    for order, (grid, confidence) in enumerate(candidates):
        if grid is None:
            continue
        key = (grid.shape, grid.tobytes())
        entry = tally.setdefault(key, [grid, 0, 0.0, order])
        entry[1] += 1
        entry[2] += float(confidence)
    ranked = sorted(tally.values(), key=lambda e: (-e[1], -e[2] / e[1], e[3]))
    return [entry[0] for entry in ranked]


def same_grid(grid: np.ndarray | None, truth: np.ndarray) -> bool:
    return grid is not None and grid.shape == truth.shape and bool((grid == truth).all())


def voted_attempts(candidates: list[tuple[np.ndarray | None, float]], truth: np.ndarray | None,
                   attempts: int = 2) -> tuple[list[np.ndarray | None], bool | None]:
    """One test input's `attempts` best-voted grids (None where fewer grids got votes), and whether one of them is
    the truth (None where the truth is unknown)."""
    ranked = vote(candidates)[:attempts]
    ranked += [None] * (attempts - len(ranked))
    return ranked, None if truth is None else any(same_grid(grid, truth) for grid in ranked)


def score(tasks: dict[str, ArcTask], candidates: dict[tuple[str, int], list[tuple[np.ndarray | None, float]]],
          attempts: int = 2) -> tuple[dict, dict]:
    """pass@1 and pass@`attempts` averaged over tasks, per-task scores, and the submission (`{task id: [{"attempt_1":
    grid, "attempt_2": grid}, ...]}`, one entry per test input in order). `candidates[(task id, test index)]` are the
    (mapped-back grid, confidence) pairs of every version."""
    per_task = defaultdict(lambda: np.zeros(attempts))
    submission = {}
    for task_id, task in tasks.items():
        entries = []
        for index, (_, truth) in enumerate(task.test):
            ranked = vote(candidates.get((task_id, index), []))[:attempts]
            entries.append({f"attempt_{k + 1}": ranked[k].tolist() if k < len(ranked) else EMPTY_ATTEMPT
                            for k in range(attempts)})
            if truth is None:
                continue
            hits = [same_grid(g, truth) for g in ranked]
            for k in range(attempts):
                per_task[task_id][k] += any(hits[:k + 1]) / len(task.test)
        submission[task_id] = entries
    scored = [task_id for task_id, task in tasks.items() if all(truth is not None for _, truth in task.test)]
    results = {"tasks": len(scored)}
    for k in (1, attempts):
        results[f"pass@{k}"] = float(np.mean([per_task[t][k - 1] for t in scored])) if scored else float("nan")
    results["per_task"] = {t: {f"pass@{k}": float(per_task[t][k - 1]) for k in (1, attempts)} for t in scored}
    return results, submission


def write_submission(submission: dict, output_dir, name: str = "submission.json") -> Path:
    path = Path(output_dir) / name
    path.write_text(json.dumps(submission))
    return path
