"""Tasks: one folder each, one `Task` object (`task.py`) that owns the task's vocabulary, flags and presets, data,
augmentation, evaluation, trace drawing and model-card text. `examples/train.py`, `evaluate_model.py`, `solve.py` and
the Hub card find a task here by name and ask it for all of that.

A new task is a module that defines `TASK` (an instance of `Task`, usually `PuzzleTask`): list it in `TASKS`, or
give its import path (`--task my_package.my_task`; the saved model records it, and evaluation and solving import
it again when the user names it: a name read from a folder alone never imports a module). No task module imports
another; what several share lives beside them (`task.py`, `lstm_trm_recipe.py`, `puzzle_csv.py`, `trm_folder.py`).
"""

from __future__ import annotations

import importlib

TASKS = {
    "sudoku": "modeling_lstm_trm.tasks.sudoku.task",
    "lm": "modeling_lstm_trm.tasks.text.task",
    "maze": "modeling_lstm_trm.tasks.maze.task",
    "arc": "modeling_lstm_trm.tasks.arc.task",
}
# The task of a model whose folder does not say (the nested LM's config records none; LSTM-TRM folders saved before
# configs recorded their task were Sudoku models).
TASK_OF_MODEL_TYPE = {"nested_lstm": "lm", "lstm_trm": "sudoku"}


def get_task(name: str, *, import_module: bool = True, named_by: str = "--task"):
    """The `Task` called `name`: a name in `TASKS`, or (`import_module`) a module path whose module defines `TASK`.
    ValueError (one line, naming the task and `named_by`, where the name came from) for anything else.

    A name read from a model folder is untrusted: importing the module it names would run that module's code, so its
    caller passes `import_module=False` unless the user asked for it (`--task` or `--trust_remote_code`)."""
    from .task import Task

    if not isinstance(name, str) or not name:
        raise ValueError(f"{named_by} {name!r} is not a task name")
    module_name = TASKS.get(name)
    if module_name is None and not import_module:
        raise ValueError(f"{named_by} {name!r}, which is not one of {', '.join(TASKS)}: a module named by a model "
                         f"folder is not imported unasked (its code would run); pass --task {name} to use it (or "
                         "--trust_remote_code)")
    module_name = module_name or name
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if name in TASKS or not (error.name and module_name.startswith(error.name)):
            raise  # a missing dependency inside a task module is the module's problem, said as Python says it
        raise ValueError(f"{named_by} {name}: not one of {', '.join(TASKS)}, and no importable module of that name "
                         "(a task of your own is a module that defines TASK)") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise ValueError(f"{named_by} {name}: module {module_name} defines no TASK (an instance of "
                         "modeling_lstm_trm.tasks.task.Task)")
    task.name = name
    return task
