"""What the command-line examples share: one-line errors and exit codes.

Exit code 2 and one line `error: ...` for anything the user can fix before a run (a flag, a file, a folder, a model),
1 for a run that ended early or in part (`RunError`: the line says what is kept), 130 for Ctrl-C and 143 for SIGTERM
where nothing was kept. An unexpected
exception is also one line (its type and message); `LSTM_TRM_TRACEBACK=1` shows the whole traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from transformers import HfArgumentParser

from .checks import first_line
from .hub import HubError
from .loading import LoadError
from .training.safety import RunError, Terminated, terminate_as_interrupt

USAGE_ERRORS = (ValueError, LoadError, HubError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                PermissionError, UnicodeDecodeError)


class OneLineErrors:
    """An argparse parser whose errors are one line (no usage block) and exit with code 2, and whose help texts may
    hold a plain `%` (argparse would read it as a format and fail on `--help`)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def add_argument(self, *args, **kwargs):
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = re.sub(r"%(?!\()", "%%", kwargs["help"])  # `%(default)s` and the like stay formats
        return super().add_argument(*args, **kwargs)


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    pass


class ArgumentParserForTraining(OneLineErrors, HfArgumentParser):
    pass


def run_cli(main: Callable[[], object]) -> None:
    """Run an example's `main()` and exit: 0 on success, else one line on stderr and the exit code above."""
    prog = os.path.basename(sys.argv[0])
    try:
        with terminate_as_interrupt():
            main()
    except SystemExit:
        raise
    except KeyboardInterrupt as error:  # Ctrl-C or SIGTERM where nothing was kept (a run says what it kept: RunError)
        terminated = isinstance(error, Terminated)
        print(f"{prog}: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr, flush=True)
        sys.exit(143 if terminated else 130)
    except Exception as error:  # noqa: BLE001  (a CLI ends in one line, never a traceback, unless asked)
        if os.environ.get("LSTM_TRM_TRACEBACK"):
            raise
        usage = isinstance(error, USAGE_ERRORS) and not isinstance(error, RunError)
        kind = "" if usage or isinstance(error, RunError) else f"{type(error).__name__}: "  # unexpected: say its type
        print(f"{prog}: error: {kind}{first_line(error)}", file=sys.stderr, flush=True)
        sys.exit(2 if usage else 1)
    sys.exit(0)


def task_command(description: str, argv: list[str] | None, command: str):
    """The command line of `examples/evaluate_model.py` (`command="evaluate"`) and `solve.py` ("solve"): --model and
    --task first, which decide the task, then the flags the task adds (`Task.add_<command>_arguments`). Returns the
    parser, the task and the parsed arguments; the task's command takes it from there."""
    from .loading import task_of
    from .tasks import get_task
    from .tasks.task import Task

    first = ArgumentParser(add_help=False)
    first.add_argument("--model")
    first.add_argument("--task")
    first.add_argument("--trust_remote_code", action="store_true")
    known, _ = first.parse_known_args(argv)
    parser = ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id); "
                                                       "`--model M --help` lists the flags of its task")
    parser.add_argument("--task", help="the task (default: the one the model was trained on, in its config)")
    parser.add_argument("--batch_size", type=int, default=256, help="puzzles (or sequences) at once")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder to run code: its own (another model type), or the task module "
                             "its config names")
    if command == "evaluate":
        parser.add_argument("--output_dir", help="where to write the results (default: the model folder)")
    task = None
    if known.model:
        try:
            name, recorded_in = task_of(known.model, known.task)
            task = get_task(name, import_module=recorded_in is None or known.trust_remote_code,
                            named_by=f"{recorded_in} names task" if recorded_in else "--task")
        except (ValueError, LoadError) as error:
            parser.error(str(error))
        if getattr(type(task), command) is getattr(Task, command):
            parser.error(f"{known.model} is a model for {task.name}: it has nothing to {command}")
        getattr(task, f"add_{command}_arguments")(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown and task is not None:
        parser.error(f"{' '.join(unknown)}: not a flag of {command} for --task {task.name} (`--model "
                     f"{known.model} --help` lists them)")
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    if getattr(args, "file", None) and not os.path.isfile(args.file):
        parser.error(f"--file: no such file: {args.file}")
    return parser, task, args


def task_card_of_older_folder(folder: str) -> dict | None:
    """The task's card text for a puzzle-model folder whose run did not record it (saved by an earlier version):
    its task's, where the task it names is one of this package's (a name read from a folder imports no module);
    else None, and the card says what is missing."""
    import json

    from .tasks import get_task
    from .training.runs import RUN_FILE

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        run = json.loads((folder / RUN_FILE).read_text()) if (folder / RUN_FILE).is_file() else {}
        if config.get("model_type") != "lstm_trm" or run.get("card"):
            return None
        task = get_task(config.get("task") or run.get("task") or "sudoku", import_module=False)
    except (OSError, ValueError, AttributeError):
        return None  # assembling the repository names what is wrong with the folder
    return task.card_text({"size": (run.get("data") or {}).get("maze_size")}, config)
