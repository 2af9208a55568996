"""One module per task. Each owns its data (loading, generation, augmentation), its evaluation, and its training
recipe (`<task>.recipe`), which provides what `examples/train.py` needs and nothing else:

- `ARGUMENTS`: the task's flag dataclasses, parsed by `HfArgumentParser` beside `TrainingArguments`;
- `preset_defaults(*task_args) -> dict`: flag defaults from the task's preset files (`presets/*.json`), given the
  flags that choose a preset; flags on the command line win;
- `check(*task_args, training_args)`: raise ValueError, naming the flag, for anything that cannot work, before any
  work is done;
- `run(*task_args, training_args) -> dict`: train, evaluate and save; returns the results.

A new task is a new module listed in `TASKS`; the trainer and `examples/train.py` do not change. No task module
imports another; what several share lives beside them (`puzzle_csv.py`: the CSV shape of TRM's puzzle datasets).
"""

TASKS = {
    "sudoku": "modeling_lstm_trm.tasks.sudoku.recipe",
    "lm": "modeling_lstm_trm.tasks.text.recipe",
    "maze": "modeling_lstm_trm.tasks.maze.recipe",
    "arc": "modeling_lstm_trm.tasks.arc.recipe",
}
