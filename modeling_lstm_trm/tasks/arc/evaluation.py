"""ARC evaluation of a model: every test input under every augmented version of its task, run for `halt_max_steps`
supervision steps (TRM's convention), cropped, mapped back and voted (`voting.score`); and the accuracy on the
demonstration pairs, the curve that shows a run learning."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .arc_data import decode
from .arc_dataset import ArcVersions, encode_pair
from .voting import score


@torch.no_grad()
def _solve(model, inputs: list[np.ndarray], identifiers: list[int], batch_size: int, desc: str, progress: bool):
    """Final answers (rows of token ids) and the Q head's final halting probability of each input."""
    device = next(model.parameters()).device
    answers, confidences = [], []
    for start in tqdm(range(0, len(inputs), batch_size), desc=desc, disable=not progress, leave=False):
        x = torch.from_numpy(np.stack(inputs[start:start + batch_size])).to(device)
        ids = torch.tensor(identifiers[start:start + batch_size], device=device)
        out = model.solve(x, puzzle_identifiers=ids, run_to_max=True, return_trace=True)
        answers.append(out.final_predictions.cpu().numpy())
        confidences.append(torch.sigmoid(out.q_halt_trace[-1]).float().cpu().numpy())
    return np.concatenate(answers), np.concatenate(confidences)


def predict_test_inputs(model, versions: ArcVersions, task_ids: list[str], side: int, batch_size: int = 256,
                        progress: bool = True) -> dict[tuple[str, int], list[tuple[np.ndarray | None, float]]]:
    """`{(task id, test index): [(answer mapped back to the task's frame, or None, confidence), ...]}`, one entry per
    version. The test outputs are not read."""
    keys, inputs, identifiers, augs = [], [], [], []
    for task_id in task_ids:
        for identifier, aug in versions.versions(task_id):
            for index, (question, _) in enumerate(versions.tasks[task_id].test):
                grid = aug.apply(question)
                inputs.append(encode_pair(grid, grid, side)[0])
                keys.append((task_id, index))
                identifiers.append(identifier)
                augs.append(aug)
    answers, confidences = _solve(model, inputs, identifiers, batch_size, "ARC test inputs", progress)
    candidates: dict[tuple[str, int], list] = {}
    for key, aug, answer, confidence in zip(keys, augs, answers, confidences):
        grid = decode(answer)
        candidates.setdefault(key, []).append((None if grid is None else aug.invert(grid), float(confidence)))
    return candidates


def demonstration_accuracy(model, versions: ArcVersions, task_ids: list[str], side: int, batch_size: int = 256,
                           progress: bool = True) -> dict[str, float]:
    """Exact and cell accuracy on the demonstration pairs of the tasks as they are (version 0, top-left)."""
    inputs, labels, identifiers = [], [], []
    for task_id in task_ids:
        for question, answer in versions.tasks[task_id].train:
            x, y = encode_pair(question, answer, side)
            inputs.append(x)
            labels.append(y)
            identifiers.append(versions.first_identifier[task_id])
    answers, _ = _solve(model, inputs, identifiers, batch_size, "ARC demonstration pairs", progress)
    labels = np.stack(labels)
    known = labels >= 0
    right = (answers == labels) | ~known
    return {"demo_exact_accuracy": float(right.all(-1).mean()),
            "demo_cell_accuracy": float((right & known).sum() / known.sum())}


def evaluate_arc(model, versions: ArcVersions, test_ids: list[str], side: int, batch_size: int = 256,
                 progress: bool = True) -> tuple[dict, dict]:
    """pass@1, pass@2 (and per task) on the test inputs of `test_ids`, and the submission."""
    candidates = predict_test_inputs(model, versions, test_ids, side, batch_size, progress)
    return score({task_id: versions.tasks[task_id] for task_id in test_ids}, candidates)
