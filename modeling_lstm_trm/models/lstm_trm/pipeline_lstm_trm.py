"""`pipeline("puzzle-solving")`: a puzzle in, its answer out, with every supervision step on request: watch the model
think. A Hub-flat file beside `modeling_lstmtrm.py` (copied into every saved folder, whose config names it under
`custom_pipelines`), so `pipeline(model=REPO, trust_remote_code=True)` works where this package is not installed.

    from transformers import pipeline
    solver = pipeline("puzzle-solving", model="outputs/lstm-trm-sudoku-6x6")     # with lstm-trm installed
    solver = pipeline(model="your-name/lstm-trm-6x6", trust_remote_code=True)   # anywhere (its own code)
    solver("1.....3...5.....2...4..6.1......5...")                              # or a list, batch_size=...
    # {"answer": "164253...", "grid": [["1", "6", ...], ...], "steps": 3, "halting_probability": [0.01, 0.2, 0.9],
    #  "valid": True, "trace": [...] with return_trace=True}

A puzzle is the task's text (a Sudoku line, `0` or `.` for a blank; a maze's rows of `# SGo`), read by the model's
own tokenizer. `valid` is the task's check of the answer (Sudoku: a valid grid keeping the givens; a maze: a shortest
path from S to G), None for a task it does not know.
"""

from __future__ import annotations

import math
from collections import deque

import torch
from transformers import Pipeline

PIPELINE_TASK = "puzzle-solving"  # the task name the package registers
# What a saved folder's config.json says of this pipeline (transformers' `custom_pipelines`), under a name of its own:
# transformers runs a folder's pipeline code for a task the folder names, so with the package installed,
# `pipeline("puzzle-solving", model=FOLDER)` must not be a name the folder claims (the package's code runs, unasked
# for none). The head loads as token classification (an answer token per cell), an Auto class transformers knows.
CUSTOM_PIPELINES = {f"lstm-trm-{PIPELINE_TASK}": {"impl": "pipeline_lstm_trm.PuzzleSolvingPipeline",
                                                 "pt": ["AutoModelForTokenClassification"], "type": "text"}}
SUDOKU_BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
MAZE = {"wall": 1, "open": 2, "start": 3, "goal": 4, "path": 5}  # the maze task's token ids (`# SGo` after padding)


def sudoku_valid(question: list[int], answer: list[int]) -> bool:
    """Every row, column and box holds 1..n once, and the givens are kept."""
    n = math.isqrt(len(answer))
    if n not in SUDOKU_BOXES or len(question) != len(answer):
        return False
    rows, cols = SUDOKU_BOXES[n]
    digits = set(range(1, n + 1))
    groups = [[r * n + c for c in range(n)] for r in range(n)] + [[r * n + c for r in range(n)] for c in range(n)]
    groups += [[(br + r) * n + bc + c for r in range(rows) for c in range(cols)]
               for br in range(0, n, rows) for bc in range(0, n, cols)]
    return (all({answer[i] for i in group} == digits for group in groups)
            and all(q == 0 or q == a for q, a in zip(question, answer)))


def maze_valid(question: list[int], answer: list[int]) -> bool:
    """The answer marks a shortest path from S to G through open cells and changes nothing else."""
    n = math.isqrt(len(question))
    if len(answer) != len(question) or question.count(MAZE["start"]) != 1 or question.count(MAZE["goal"]) != 1:
        return False
    marked = {i for i, a in enumerate(answer) if a == MAZE["path"]}
    if any(question[i] != MAZE["open"] for i in marked) or any(
            a != q for i, (q, a) in enumerate(zip(question, answer)) if i not in marked):
        return False
    start, goal = question.index(MAZE["start"]), question.index(MAZE["goal"])

    def reach(allowed) -> dict[int, int]:
        dist, queue = {start: 0}, deque([start])
        while queue:
            cell = queue.popleft()
            r, c = divmod(cell, n)
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                nxt = nr * n + nc
                if 0 <= nr < n and 0 <= nc < n and nxt not in dist and allowed(nxt):
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
        return dist

    shortest = reach(lambda i: question[i] != MAZE["wall"]).get(goal)
    along = reach(lambda i: i in marked or i == goal)
    return shortest is not None and len(marked) == shortest - 1 and goal in along and len(along) == len(marked) + 2


CHECKERS = {"sudoku": sudoku_valid, "maze": maze_valid}


class PuzzleSolvingPipeline(Pipeline):
    """Puzzles (text, or a list of texts) in; per puzzle its answer (text and grid), the supervision steps the model
    used (its Q head's halt, or `max_steps`), the halting probability at each step, whether the answer passes the
    task's check and, with `return_trace=True`, the answer after every step.

    Call arguments: `max_steps` (default the model's `halt_max_steps`), `fixed_point_steps` (also stop where the
    answer held that many steps), `halt_on_q_head` (False: halt only by those two, for puzzles larger than training's,
    where a Q head can halt too early), `return_trace`; and the pipelines' own `batch_size`."""

    def _sanitize_parameters(self, max_steps: int | None = None, fixed_point_steps: int | None = None,
                             halt_on_q_head: bool | None = None, return_trace: bool | None = None, **kwargs):
        forward = {key: value for key, value in (("max_steps", max_steps), ("fixed_point_steps", fixed_point_steps),
                                                 ("halt_on_q_head", halt_on_q_head)) if value is not None}
        return {}, forward, {} if return_trace is None else {"return_trace": return_trace}

    def preprocess(self, puzzle) -> dict:
        if not isinstance(puzzle, str):
            raise ValueError(f"a puzzle is the task's text (a string), got {type(puzzle).__name__}")
        ids = self.tokenizer(puzzle, add_special_tokens=False)["input_ids"]
        unknown = self.tokenizer.unk_token_id
        if unknown is not None and unknown in ids:
            raise ValueError(f"the puzzle {puzzle[:40]!r} holds characters this model's tokenizer does not know")
        cells, config = len(ids), self.model.config
        side = math.isqrt(cells)
        if (cells != config.seq_len and config.mixer != "conv") or side * side != cells or not cells:
            raise ValueError(f"the puzzle has {cells} cells; this model reads {config.seq_len} "
                             f"({math.isqrt(config.seq_len)}x{math.isqrt(config.seq_len)})")
        return {"input_ids": torch.tensor([ids], dtype=torch.long)}

    def _forward(self, inputs: dict, max_steps: int | None = None, fixed_point_steps: int | None = None,
                 halt_on_q_head: bool = True) -> dict:
        out = self.model.solve(inputs["input_ids"], max_steps=max_steps, fixed_point_steps=fixed_point_steps,
                               halt_on_q_head=halt_on_q_head, return_trace=True)
        return {"input_ids": inputs["input_ids"], "halted_at": out.halted_at, "predictions": out.predictions,
                "trace": out.trace.transpose(0, 1), "q_halt_trace": out.q_halt_trace.transpose(0, 1)}

    def postprocess(self, outputs: dict, return_trace: bool = False) -> dict:
        steps = int(outputs["halted_at"][0])
        question, answer = outputs["input_ids"][0].tolist(), outputs["predictions"][0].tolist()
        checker = CHECKERS.get(getattr(self.model.config, "task", None))
        result = {"answer": self.to_text(answer), "grid": self.to_grid(answer), "steps": steps,
                  "halting_probability": [round(float(p), 6) for p in outputs["q_halt_trace"][0, :steps].sigmoid()],
                  "valid": None if checker is None else checker(question, answer)}
        if return_trace:
            result["trace"] = [self.to_text(step.tolist()) for step in outputs["trace"][0, :steps]]
        return result

    def to_text(self, ids: list[int]) -> str:
        """Token ids as the task's text: one character per cell (a token of several characters shows as `?`)."""
        return "".join(token if len(token) == 1 else "?" for token in self.tokenizer.convert_ids_to_tokens(ids))

    def to_grid(self, ids: list[int]) -> list[list[str]]:
        text, side = self.to_text(ids), math.isqrt(len(ids))
        return [list(text[row * side:(row + 1) * side]) for row in range(side)]


__all__ = ["CHECKERS", "CUSTOM_PIPELINES", "PIPELINE_TASK", "PuzzleSolvingPipeline"]
