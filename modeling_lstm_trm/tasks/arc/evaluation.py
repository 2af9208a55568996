"""ARC evaluation of a model: every test input under every augmented version of its task, run for `halt_max_steps`
supervision steps (TRM's convention), cropped, mapped back and voted (`voting.score`); and the accuracy on the
demonstration pairs, the curve that shows a run learning."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ...training.runs import gather_in_order, process_share
from .arc_data import decode
from .arc_dataset import ArcVersions, encode_pair
from .voting import score


@torch.no_grad()
def _run(model, items: list, prepare, finish, batch_size: int, desc: str, progress: bool) -> list:
    """`finish(item, answer, confidence)` for every item, where `prepare(item)` gives the model's input row and puzzle
    identifier, the answer is the final prediction (row of token ids) and the confidence the Q head's final halting
    probability. Inputs are encoded a batch at a time (ARC-AGI-1's evaluation split under 1,000 versions is about
    400,000 canvases); under several processes each solves its share and all get every result, in order."""
    device = next(model.parameters()).device
    share = process_share(len(items))
    results = []
    for start in tqdm(range(share.start, share.stop, batch_size), desc=desc, disable=not progress, leave=False):
        batch = items[start:min(start + batch_size, share.stop)]
        rows, identifiers = zip(*map(prepare, batch))
        out = model.solve(torch.from_numpy(np.stack(rows)).to(device),
                          puzzle_identifiers=torch.tensor(identifiers, device=device), run_to_max=True,
                          return_trace=True)
        answers = out.final_predictions.cpu().numpy()
        confidences = torch.sigmoid(out.q_halt_trace[-1]).float().cpu().numpy()
        results.extend(map(finish, batch, answers, confidences))
    return gather_in_order(results)


def predict_test_inputs(model, versions: ArcVersions, task_ids: list[str], side: int, batch_size: int = 256,
                        progress: bool = True) -> dict[tuple[str, int], list[tuple[np.ndarray | None, float]]]:
    """`{(task id, test index): [(answer mapped back to the task's frame, or None, confidence), ...]}`, one entry per
    version. The test outputs are not read."""
    items = [(task_id, index, identifier, aug) for task_id in task_ids
             for identifier, aug in versions.versions(task_id)
             for index in range(len(versions.tasks[task_id].test))]

    def prepare(item):
        task_id, index, identifier, aug = item
        grid = aug.apply(versions.tasks[task_id].test[index][0])
        return encode_pair(grid, grid, side)[0], identifier

    def finish(item, answer, confidence):
        task_id, index, _, aug = item
        grid = decode(answer)
        return (task_id, index), None if grid is None else aug.invert(grid), float(confidence)

    candidates: dict[tuple[str, int], list] = {}
    for key, grid, confidence in _run(model, items, prepare, finish, batch_size, "ARC test inputs", progress):
        candidates.setdefault(key, []).append((grid, confidence))
    return candidates


def demonstration_accuracy(model, versions: ArcVersions, task_ids: list[str], side: int, batch_size: int = 256,
                           progress: bool = True) -> dict[str, float]:
    """Exact and cell accuracy on the demonstration pairs of the tasks as they are (version 0, top-left)."""
    items = [(versions.first_identifier[task_id], *encode_pair(question, answer, side)) for task_id in task_ids
             for question, answer in versions.tasks[task_id].train]  # a few per task: encoded once, up front

    def prepare(item):
        identifier, input_ids, _ = item
        return input_ids, identifier

    def finish(item, prediction, _):
        labels = item[2]
        known = labels >= 0
        right = (prediction == labels) & known
        return right.sum() == known.sum(), int(right.sum()), int(known.sum())

    scores = _run(model, items, prepare, finish, batch_size, "ARC demonstration pairs", progress)
    exact, right, known = (np.array(column) for column in zip(*scores))
    return {"demo_exact_accuracy": float(exact.mean()), "demo_cell_accuracy": float(right.sum() / known.sum())}


def evaluate_arc(model, versions: ArcVersions, test_ids: list[str], side: int, batch_size: int = 256,
                 progress: bool = True) -> tuple[dict, dict]:
    """pass@1, pass@2 (and per task) on the test inputs of `test_ids`, and the submission."""
    candidates = predict_test_inputs(model, versions, test_ids, side, batch_size, progress)
    return score({task_id: versions.tasks[task_id] for task_id in test_ids}, candidates)
