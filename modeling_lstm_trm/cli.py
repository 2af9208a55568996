"""What the command-line examples share: one-line errors and exit codes.

Exit code 2 and one line `error: ...` for anything the user can fix before a run (a flag, a file, a folder, a model),
1 for a run that ended early or in part (`RunError`: the line says what is kept), 130 for Ctrl-C. An unexpected
exception is also one line (its type and message); `LSTM_TRM_TRACEBACK=1` shows the whole traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from transformers import HfArgumentParser

from .checks import first_line
from .hub import HubError
from .loading import LoadError
from .training.safety import RunError

USAGE_ERRORS = (ValueError, LoadError, HubError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                PermissionError, UnicodeDecodeError)


class OneLineErrors:
    """An argparse parser whose errors are one line (no usage block) and exit with code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class ArgumentParser(OneLineErrors, argparse.ArgumentParser):
    pass


class ArgumentParserForTraining(OneLineErrors, HfArgumentParser):
    pass


def run_cli(main: Callable[[], object]) -> None:
    """Run an example's `main()` and exit: 0 on success, else one line on stderr and the exit code above."""
    prog = os.path.basename(sys.argv[0])
    try:
        main()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
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
    known, _ = first.parse_known_args(argv)
    parser = ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id); "
                                                       "`--model M --help` lists the flags of its task")
    parser.add_argument("--task", help="the task (default: the one the model was trained on, in its config)")
    parser.add_argument("--batch_size", type=int, default=256, help="puzzles (or sequences) at once")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    if command == "evaluate":
        parser.add_argument("--output_dir", help="where to write the results (default: the model folder)")
    task = None
    if known.model:
        try:
            task = get_task(task_of(known.model, known.task))
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
