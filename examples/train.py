"""Train a model of this package on a task: LSTM-TRM on Sudoku puzzles generated on the fly (the main job, the
default), or the nested LM on text.

    accelerate launch examples/train.py                    # 6x6 CPU preset: about 15 minutes on a 2-core CPU
    accelerate launch examples/train.py --grid_size 4      # about a minute
    accelerate launch examples/train.py --grid_size 9      # the design's size (512 hidden, bf16): for a GPU
    accelerate launch examples/train.py --task lm --train_file input.txt --tokenizer char --output_dir out

`--task` picks the task: a name in `modeling_lstm_trm.tasks.TASKS`, or the import path of a module of your own that
defines `TASK` (see `modeling_lstm_trm/tasks/task.py`); `--task lm --help` lists that task's flags. A task's preset
(its `presets/*.json`) sets the defaults, and every flag, `TrainingArguments`' included (`--max_steps`,
`--learning_rate`, `--per_device_train_batch_size`, `--resume_from_checkpoint`, ...), overrides it. Works under
`accelerate launch` (one or several processes) and plain `python`. The output folder holds the model (safetensors,
config, code files for `trust_remote_code`), its tokenizer, a model card, `eval_results.json`, `training_run.json`
and `training_curves.png`.

Before any training: the flags, the evaluation files, the output folder (a non-empty one only with
`--resume_from_checkpoint` or `--overwrite_output_dir`) and, with `--push_to_hub`, the login. The model is saved
before anything that can fail after training; a divergence, a Ctrl-C or a late failure ends in one line that says
what is kept and how to go on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from modeling_lstm_trm.cli import ArgumentParserForTraining, run_cli
from modeling_lstm_trm.hub import HubError, build_model_card, check_login, check_repo_id, push_checkpoint
from modeling_lstm_trm.tasks import TASKS, get_task
from modeling_lstm_trm.tasks.task import check_shared_flags
from modeling_lstm_trm.training.runs import (
    check_output_dir,
    check_training_arguments,
    launcher_defaults,
    release_folders,
)
from modeling_lstm_trm.training.safety import after_training


@dataclass
class TaskArguments:
    task: str = field(default="sudoku", metadata={
        "help": f"What to train: {', '.join(TASKS)}, or the import path of a module that defines TASK (`--task lm "
                "--help` lists the flags of that task)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Train into a non-empty --output_dir (without it, such a folder is refused unless resuming)."})


def parse(argv: list[str]):
    """The task, then the flags that choose its preset, then everything with the preset as defaults."""
    first = ArgumentParserForTraining(TaskArguments, add_help=False)
    choice, rest = first.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    try:
        task = get_task(choice.task)
    except ValueError as error:
        first.error(str(error))
    *chosen, _ = ArgumentParserForTraining(task.arguments, add_help=False).parse_args_into_dataclasses(
        args=rest, return_remaining_strings=True)
    try:
        defaults = {**repository_data_defaults(task), **task.preset_defaults(*chosen)}
    except ValueError as error:
        first.error(str(error))
    parser = ArgumentParserForTraining((TaskArguments, *task.arguments, TrainingArguments))
    parser.set_defaults(**launcher_defaults(), **defaults)
    launcher, *task_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    try:
        check_training_arguments(training_args)
        check_shared_flags(task_args)
        task.check(*task_args, training_args=training_args)
        push = claim_push(training_args)
        check_output_dir(training_args, launcher.overwrite_output_dir)  # last: it may remove an earlier run's files
    except (ValueError, HubError) as error:
        parser.error(str(error))
    return task, task_args, training_args, push


SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"  # beside a checkout of the repository


def repository_data_defaults(task) -> dict:
    """Defaults that point at the repository's own data where it exists (the installed package knows no such path;
    the task says what it takes from it: the main job also scores the Sudoku puzzle files of ../shared/data/sudoku)."""
    defaults = getattr(task, "repository_defaults", None)
    return defaults(SHARED_DATA) if defaults else {}


def claim_push(training_args: TrainingArguments) -> tuple[str, str | None] | None:
    """`--push_to_hub --hub_model_id USER/NAME` uploads the finished folder once, as examples/push_to_hub.py does,
    instead of Trainer's pushes at every save. The name and the login are checked now, not after training, and the
    token is taken out of the arguments, which Trainer saves (`training_args.bin`) beside every checkpoint."""
    token, training_args.hub_token = training_args.hub_token, None
    if not training_args.push_to_hub:
        return None
    if not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id USER/NAME")
    check_repo_id(training_args.hub_model_id)
    check_login(token)
    training_args.push_to_hub = False
    if training_args.process_index == 0:
        print(f"--push_to_hub: the finished folder goes to {training_args.hub_model_id} in one commit at the end "
              "(not at every save)", flush=True)
    return training_args.hub_model_id, token


def main(argv: list[str] | None = None) -> dict:
    task, task_args, training_args, push = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        results = task.run(*task_args, training_args=training_args)
        if training_args.process_index == 0:
            with after_training("writing the model card", training_args.output_dir):
                build_model_card(training_args.output_dir, training_args.hub_model_id).save(
                    Path(training_args.output_dir) / "README.md")
        if push and training_args.process_index == 0:
            repo_id, token = push
            with after_training("the upload to the Hub", training_args.output_dir):
                url = push_checkpoint(training_args.output_dir, repo_id, private=bool(training_args.hub_private_repo),
                                      revision=training_args.hub_revision, token=token)
            print(f"Pushed to the Hub: {url}", flush=True)
    finally:
        release_folders()  # the output folder, claimed by parse
    return results


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_cli(main)
