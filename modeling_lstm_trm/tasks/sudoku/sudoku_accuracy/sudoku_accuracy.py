"""Sudoku accuracy: exact-puzzle accuracy and accuracy on the blank cells, for the `evaluate` library."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Scores solved grids against their solutions. `exact_accuracy`: the fraction of puzzles whose every cell is right.
`cell_accuracy`: the fraction of blank cells (0 in `puzzles`) filled correctly; every cell when `puzzles` is not
given. Grids are flattened row by row.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of flattened predicted grids (ints).
    references: list of flattened solution grids (ints).
    puzzles: optional list of flattened puzzles (0 = blank); only their blank cells count for `cell_accuracy`.
Returns:
    exact_accuracy, cell_accuracy, puzzles (the number scored).
"""


class SudokuAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("int64")),
                "references": datasets.Sequence(datasets.Value("int64")),
            }),
        )

    def _compute(self, predictions, references, puzzles=None):
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.shape != references.shape:
            raise ValueError(f"predictions {predictions.shape} and references {references.shape} differ in shape")
        correct = predictions == references
        blanks = np.ones_like(correct) if puzzles is None else np.asarray(puzzles) == 0
        return {
            "exact_accuracy": float(correct.all(-1).mean()) if len(correct) else 0.0,
            "cell_accuracy": float((correct & blanks).sum() / max(1, blanks.sum())),
            "puzzles": int(len(correct)),
        }
