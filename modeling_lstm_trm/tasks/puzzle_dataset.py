"""The training data of every grid task (Sudoku, mazes, ...): (question, answer) pairs augmented on the fly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class AugmentedPuzzles:
    """A map-style dataset: item i is pair `rng.integers(len(questions))` under `augment(question, answer, rng)`, with
    `rng` seeded by (seed, i), so every item is reproducible (exact resume) without storing it. Without `augment`,
    item i is pair i % len(questions) as it is.

    Items: `input_ids` (the question, flattened), `labels` (the answer), `puzzle_identifiers` (0).
    """

    def __init__(self, questions: np.ndarray, answers: np.ndarray, length: int, seed: int = 0,
                 augment: Augment | None = None):
        if len(questions) != len(answers) or not len(questions):
            raise ValueError(f"need as many answers as questions (at least one), got {len(questions)} and "
                             f"{len(answers)}")
        self.questions, self.answers = questions, answers
        self.length, self.seed, self.augment = length, seed, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        import torch

        if not 0 <= index < self.length:
            raise IndexError(index)
        if self.augment is None:
            j = index % len(self.questions)
            question, answer = self.questions[j], self.answers[j]
        else:
            rng = np.random.default_rng([self.seed, index])
            j = int(rng.integers(len(self.questions)))
            question, answer = self.augment(self.questions[j], self.answers[j], rng)
        return {"input_ids": torch.from_numpy(np.ascontiguousarray(question).reshape(-1)),
                "labels": torch.from_numpy(np.ascontiguousarray(answer).reshape(-1)),
                "puzzle_identifiers": torch.tensor(0)}
