"""Test-time selection for mazes: read a maze in each of its 8 symmetric images, turn every answer back, and keep the
shortest of those that mark one path from S to G.

Whether an answer marks a path from S to G is a check of the answer's own shape (`path_steps`: every marked cell has
two marked neighbours, S and G one, and one walk joins them); it needs no search of the maze, so a solver may run it
on its own answers. Among answers that are paths, a shortest path is the shortest: wherever one of the candidates is
a shortest path, the pick is one (maybe another of the same length). So the score is exactly the share of mazes where
some image found a shortest path, and the cost is one run per image. The candidates are each image's answer where its
fixed point stops it (`at_stop`) or every answer up to there (`along_the_way`: the path can be right at one step and
lost at a later one).
"""

from __future__ import annotations

import numpy as np

from ..task import dihedral, undo_dihedral
from .mazes import GOAL, OPEN, PATH, START, _neighbours, score_mazes, without_count

SYMMETRIES = 8


def path_shaped(questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Per answer (`answers` (..., N, N) against `questions` broadcast to them), whether it keeps the maze, marks only
    open cells, and each marked cell has exactly two marked neighbours and S and G one each: a path from S to G,
    perhaps with separate loops of marked cells beside it (`path_steps` tells them apart)."""
    marked = answers == PATH
    keeps = ((answers == questions) | (marked & (questions == OPEN))).all((-1, -2))
    on = marked | (questions == START) | (questions == GOAL)
    padded = np.pad(on, [(0, 0)] * (on.ndim - 2) + [(1, 1), (1, 1)])
    degree = (padded[..., :-2, 1:-1].astype(np.int8) + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2]
              + padded[..., 1:-1, 2:])
    wanted = np.where(marked, 2, 1)
    return keeps & (~on | (degree == wanted)).all((-1, -2))


def path_steps(question: np.ndarray, answer: np.ndarray) -> int | None:
    """The steps of the one path from S to G that `answer` marks (and nothing else), or None where it marks none."""
    if not path_shaped(question, answer):
        return None
    on = (answer == PATH) | (question == START) | (question == GOAL)
    cell = tuple(int(v) for v in np.argwhere(question == START)[0])
    previous, steps = None, 0
    while question[cell] != GOAL:
        following = [n for n in _neighbours(cell, question.shape[0]) if on[n] and n != previous]
        previous, cell, steps = cell, following[0], steps + 1
    return steps if steps + 1 == int(on.sum()) else None  # a loop of marked cells beside the path: not one path


def shortest_path_among(question: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """The first of the shortest candidates (k, N, N) that mark one path from S to G; None where none does."""
    best, best_steps, seen = None, None, set()
    for candidate in candidates[path_shaped(question, candidates)]:
        key = candidate.tobytes()
        if key in seen:
            continue
        seen.add(key)
        steps = path_steps(question, candidate)
        if steps is not None and (best_steps is None or steps < best_steps):
            best, best_steps = candidate, steps
    return best


def select_over_symmetries(model, questions: np.ndarray, answers: np.ndarray, max_steps: int,
                           fixed_point_steps: int = 2, symmetries: int = SYMMETRIES, batch_size: int = 50,
                           progress: bool = True) -> dict:
    """Each maze read in `symmetries` images (the first is the maze itself) to `max_steps`, each image stopped at its
    fixed point (its answer held `fixed_point_steps` steps; the Q head is not asked), scored three ways: `one_image`
    (the maze itself at its stop, the plain read), `at_stop` and `along_the_way` (the shortest path among the images'
    answers, see the module's docstring; where none is a path, the maze itself at its stop). Also `mean_stop_step`
    per image, `images_stop_steps` (the steps all images ran together: the cost), and `found_a_path` (the share of
    mazes where some candidate along the way is a path from S to G)."""
    import torch
    from tqdm.auto import tqdm

    if not 1 <= symmetries <= SYMMETRIES:
        raise ValueError(f"symmetries must be 1..{SYMMETRIES}, got {symmetries}")
    device = next(model.parameters()).device
    count, side = len(questions), questions.shape[-1]
    picks = {"one_image": [], "at_stop": [], "along_the_way": []}
    stop_steps, found = [], []
    for begin in tqdm(range(0, count, batch_size), desc=f"{side}x{side} mazes x {symmetries} images", unit="batch",
                      disable=not progress, leave=False):
        batch = questions[begin:begin + batch_size]
        images = np.concatenate([dihedral(batch, k) for k in range(symmetries)])  # image-major
        run = model.solve(torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1)).to(device),
                          max_steps=max_steps, fixed_point_steps=fixed_point_steps, halt_on_q_head=False,
                          return_trace=True)  # each image leaves the batch at its stop
        trace = run.trace.cpu().numpy().astype(np.int8).reshape(-1, symmetries, len(batch), side, side)
        stop = run.halted_at.cpu().numpy().reshape(symmetries, len(batch))
        turned_back = np.stack([undo_dihedral(trace[:, k], k) for k in range(symmetries)], axis=1)
        for m, question in enumerate(batch):
            at_stop = turned_back[stop[:, m] - 1, np.arange(symmetries), m]  # (symmetries, N, N)
            along = np.concatenate([turned_back[:stop[k, m], k, m] for k in range(symmetries)])
            picks["one_image"].append(at_stop[0])
            for rule, candidates in (("at_stop", at_stop), ("along_the_way", along)):
                best = shortest_path_among(question, candidates)
                picks[rule].append(at_stop[0] if best is None else best)
                if rule == "along_the_way":
                    found.append(best is not None)
        stop_steps.append(stop)
    stop_steps = np.concatenate(stop_steps, axis=1)
    results = {"mazes": count, "symmetries": symmetries, "fixed_point_steps": fixed_point_steps,
               "max_steps": max_steps, "mean_stop_step": float(stop_steps[0].mean()),
               "images_stop_steps": float(stop_steps.sum(0).mean()), "found_a_path": float(np.mean(found))}
    for rule, chosen in picks.items():
        results[rule] = without_count(score_mazes(questions, answers, np.stack(chosen)))
    return results
