"""Tasks: one folder each, one `Task` object (`task.py`) that owns the task's vocabulary, flags and presets, data,
augmentation, evaluation, trace drawing and model-card text. `examples/train.py`, `evaluate_model.py`, `solve.py` and
the Hub card find a task here by name and ask it for all of that.

A new task is a module that defines `TASK` (an instance of `Task`, usually `PuzzleTask`): list it in `TASKS`, or
give its import path (`--task my_package.my_task`; the saved model records it, so evaluation and solving find it
again). No task module imports another; what several share lives beside them (`task.py`, `lstm_trm_recipe.py`,
`puzzle_csv.py`, `trm_folder.py`).
"""

from __future__ import annotations

import importlib

TASKS = {
    "sudoku": "modeling_lstm_trm.tasks.sudoku.task",
    "lm": "modeling_lstm_trm.tasks.text.task",
    "maze": "modeling_lstm_trm.tasks.maze.task",
    "arc": "modeling_lstm_trm.tasks.arc.task",
}


def get_task(name: str):
    """The `Task` called `name`: a name in `TASKS`, or a module path whose module defines `TASK`. ValueError (one
    line, naming the task) for anything else."""
    from .task import Task

    module_name = TASKS.get(name, name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if name in TASKS or not (error.name and module_name.startswith(error.name)):
            raise  # a missing dependency inside a task module is the module's problem, said as Python says it
        raise ValueError(f"--task {name}: not one of {', '.join(TASKS)}, and no importable module of that name "
                         "(a task of your own is a module that defines TASK)") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise ValueError(f"--task {name}: module {module_name} defines no TASK (an instance of "
                         "modeling_lstm_trm.tasks.task.Task)")
    task.name = name
    return task
