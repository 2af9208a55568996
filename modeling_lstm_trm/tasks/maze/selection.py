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

from dataclasses import dataclass

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


def shortest_path_among(question: np.ndarray, candidates: np.ndarray) -> int | None:
    """The index of the first of the shortest candidates (k, N, N) that mark one path from S to G; None where none
    does."""
    best, best_steps, seen = None, None, set()
    for index in np.flatnonzero(path_shaped(question, candidates)):
        key = candidates[index].tobytes()
        if key in seen:
            continue
        seen.add(key)
        steps = path_steps(question, candidates[index])
        if steps is not None and (best_steps is None or steps < best_steps):
            best, best_steps = int(index), steps
    return best


@dataclass
class SymmetryReads:
    """Per maze: the plain read and the two picks over its images (each (M, N, N), in the maze's own frame), where
    the along-the-way pick came from, and the first maze's images step by step (for drawing)."""

    one_image: np.ndarray  # the maze itself at its stop
    at_stop: np.ndarray  # the shortest path among the images' answers at their stops; else `one_image`
    along_the_way: np.ndarray  # the same among every answer up to the stops
    stops: np.ndarray  # (symmetries, M): each image's stop step
    picked: np.ndarray  # (M, 2): the image and step of `along_the_way` (1-based step); -1 where no answer is a path
    first_maze_trace: np.ndarray  # (steps, symmetries, N, N): the first maze's images turned back, held after a stop

    @property
    def found_a_path(self) -> np.ndarray:
        return self.picked[:, 0] >= 0


def read_over_symmetries(model, questions: np.ndarray, max_steps: int, fixed_point_steps: int = 2,
                         symmetries: int = SYMMETRIES, batch_size: int = 50, progress: bool = True) -> SymmetryReads:
    """Each maze read in `symmetries` images (the first is the maze itself) to `max_steps`, each image stopped at its
    fixed point (its answer held `fixed_point_steps` steps; the Q head is not asked), its answers turned back and
    picked from as the module's docstring says."""
    import torch
    from tqdm.auto import tqdm

    if not 1 <= symmetries <= SYMMETRIES:
        raise ValueError(f"symmetries must be 1..{SYMMETRIES}, got {symmetries}")
    device = next(model.parameters()).device
    side = questions.shape[-1]
    reads = {"one_image": [], "at_stop": [], "along_the_way": [], "stops": [], "picked": []}
    first_maze_trace = None
    for begin in tqdm(range(0, len(questions), batch_size), desc=f"{side}x{side} mazes x {symmetries} images",
                      unit="batch", disable=not progress, leave=False):
        batch = questions[begin:begin + batch_size]
        images = np.concatenate([dihedral(batch, k) for k in range(symmetries)])  # image-major
        run = model.solve(torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1)).to(device),
                          max_steps=max_steps, fixed_point_steps=fixed_point_steps, halt_on_q_head=False,
                          return_trace=True)  # each image leaves the batch at its stop
        trace = run.trace.cpu().numpy().astype(np.int8).reshape(-1, symmetries, len(batch), side, side)
        stop = run.halted_at.cpu().numpy().reshape(symmetries, len(batch))
        turned_back = np.stack([undo_dihedral(trace[:, k], k) for k in range(symmetries)], axis=1)
        if first_maze_trace is None:
            first_maze_trace = turned_back[:, :, 0]
        for m, question in enumerate(batch):
            at_stop = turned_back[stop[:, m] - 1, np.arange(symmetries), m]  # (symmetries, N, N)
            along = np.concatenate([turned_back[:stop[k, m], k, m] for k in range(symmetries)])
            reads["one_image"].append(at_stop[0])
            best = shortest_path_among(question, at_stop)
            reads["at_stop"].append(at_stop[0 if best is None else best])
            best = shortest_path_among(question, along)
            reads["along_the_way"].append(at_stop[0] if best is None else along[best])
            if best is None:
                reads["picked"].append((-1, -1))
            else:  # the index counts every image's steps up to its stop, image after image
                image = int(np.searchsorted(np.cumsum(stop[:, m]), best, side="right"))
                reads["picked"].append((image, best - int(stop[:image, m].sum()) + 1))
        reads["stops"].append(stop)
    return SymmetryReads(**{name: np.stack(reads[name]) for name in ("one_image", "at_stop", "along_the_way")},
                         stops=np.concatenate(reads["stops"], axis=1), picked=np.array(reads["picked"]),
                         first_maze_trace=first_maze_trace)


def select_over_symmetries(model, questions: np.ndarray, answers: np.ndarray, max_steps: int,
                           fixed_point_steps: int = 2, symmetries: int = SYMMETRIES, batch_size: int = 50,
                           progress: bool = True) -> dict:
    """`read_over_symmetries` scored three ways: `one_image` (the maze itself at its stop, the plain read),
    `at_stop` and `along_the_way` (the picks). Also `mean_stop_step` per image, `images_stop_steps` (the steps all
    images ran together: the cost), and `found_a_path` (the share of mazes where some candidate along the way is a
    path from S to G)."""
    reads = read_over_symmetries(model, questions, max_steps, fixed_point_steps, symmetries, batch_size, progress)
    results = {"mazes": len(questions), "symmetries": symmetries, "fixed_point_steps": fixed_point_steps,
               "max_steps": max_steps, "mean_stop_step": float(reads.stops[0].mean()),
               "images_stop_steps": float(reads.stops.sum(0).mean()),
               "found_a_path": float(reads.found_a_path.mean())}
    for rule in ("one_image", "at_stop", "along_the_way"):
        results[rule] = without_count(score_mazes(questions, answers, getattr(reads, rule)))
    return results
