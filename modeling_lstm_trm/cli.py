"""What the command-line examples share: one-line errors and exit codes.

Exit code 2 and one line `error: ...` for anything the user can fix before a run (a flag, a file, a folder, a model),
1 for a run that ended early or in part (`RunError`: the line says what is kept), 130 for Ctrl-C and 143 for SIGTERM
where nothing was kept. An unexpected
exception is also one line (its type and message); `LSTM_TRM_TRACEBACK=1` shows the whole traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import HfArgumentParser

from .checks import first_line
from .hub import HubError
from .loading import MODEL_CLASSES, LoadError, read_config
from .training.compiling import COMPILE_MODES, compile_recursion
from .training.runs import EVAL_FILE, RUN_FILE
from .training.safety import RunError, Terminated, finite_json, terminate_as_interrupt

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


COMMAND_FLAGS = {"evaluate": "evaluate_arguments", "solve": "solve_arguments"}


def trained_task(name_or_path: str) -> tuple[str | None, str | None]:
    """The task a model was trained for and the file that says so: the one its config records (`task`), else (a
    folder written before configs recorded it) its training run's, else the one its model type is for (no file)."""
    from .tasks import TASK_OF_MODEL_TYPE

    config = read_config(name_or_path)
    if config.get("task"):
        return config["task"], f"{name_or_path}/config.json"
    run = Path(name_or_path) / RUN_FILE
    if run.is_file():
        try:
            recorded = json.loads(run.read_text()).get("task")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            raise LoadError(f"{run} is not a JSON object ({first_line(error)})") from None
        if recorded:
            return recorded, str(run)
    return TASK_OF_MODEL_TYPE.get(config.get("model_type")), None


def task_of(name_or_path: str, asked: str | None) -> tuple[str | None, str | None]:
    """The task to run a model on and, where it was read from the model's folder rather than asked for, the file
    that recorded it: `asked` (a --task flag) where given, else the one it was trained for; ValueError where the flag
    asks for another task than the one the folder records."""
    known, recorded_in = trained_task(name_or_path)
    if asked and recorded_in and asked != known:
        raise ValueError(f"--task {asked}: {name_or_path} is a model for {known}")
    if asked or recorded_in is None:
        return asked or known, None
    return known, recorded_in


def task_command(description: str, argv: list[str] | None, command: str):
    """The command line of `examples/evaluate_model.py` (`command="evaluate"`) and `solve.py` ("solve"): --model and
    --task first, which decide the task, then the task's own flags, built from its flag dataclass
    (`Task.evaluate_arguments` / `Task.solve_arguments`) and checked (its `check()`) before any work. Returns the
    `TaskCommand`, whose `evaluate()` or `solve()` runs it."""
    from .tasks import get_task

    first = ArgumentParser(add_help=False)
    first.add_argument("--model")
    first.add_argument("--task")
    first.add_argument("--trust_remote_code", action="store_true")
    known, _ = first.parse_known_args(argv)
    task = flags = None
    if known.model:
        try:
            name, recorded_in = task_of(known.model, known.task)
            task = get_task(name, import_module=recorded_in is None or known.trust_remote_code,
                            named_by=f"{recorded_in} names task" if recorded_in else "--task")
        except (ValueError, LoadError) as error:
            first.error(str(error))
        model_type = read_config(known.model).get("model_type")
        if known.task and model_type in MODEL_CLASSES and model_type != task.model_type:
            first.error(f"--task {known.task}: {known.model} is a {model_type} model, and {task.name} takes "
                        f"{task.model_type} models")
        flags = getattr(task, COMMAND_FLAGS[command])
        if flags is None:
            first.error(f"{known.model} is a model for {task.name}: it has nothing to {command}")
    parser = ArgumentParserForTraining([flags] if flags else [], description=description,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if command == "solve":
        parser.add_argument("puzzles", nargs="*", help="puzzles in the task's text (ARC: task ids of --split)")
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id); "
                                                       "`--model M --help` lists the flags of its task")
    parser.add_argument("--task", help="the task (default: the one the model was trained on, in its config)")
    parser.add_argument("--batch_size", type=int, default=256, help="puzzles (or sequences) at once")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder to run code: its own (another model type), or the task module "
                             "its config names")
    if command == "evaluate":
        parser.add_argument("--output_dir", help="where to write the results (default: the model folder)")
    if task is None or task.model_type == "lstm_trm":
        parser.add_argument("--compile_recursion", default="none", choices=COMPILE_MODES,
                            help="torch.compile the recursion (worth its seconds of compiling on long runs: large "
                                 "mazes, many puzzles or steps; the answers are the same)")
    *options, args, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unknown and task is not None:
        parser.error(f"{' '.join(unknown)}: not a flag of {command} for --task {task.name} (`--model "
                     f"{known.model} --help` lists them)")
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    try:
        if options and hasattr(options[0], "check"):
            options[0].check()
    except ValueError as error:
        parser.error(str(error))
    return TaskCommand(parser, task, args, options[0] if options else None)


@dataclass
class TaskCommand:
    """A parsed `evaluate_model.py` or `solve.py` command: the one pipeline of each, through the task's hooks. A
    ValueError of the task's (a file, a puzzle, a size the model cannot read) ends as a flag error does: one line,
    exit code 2."""

    parser: argparse.ArgumentParser
    task: object
    args: argparse.Namespace  # the command's own: --model, --batch_size, --trust_remote_code, ...
    options: object  # the task's flags

    @contextlib.contextmanager
    def refusals(self):
        try:
            yield
        except LoadError:
            raise  # a model folder's one line, as it is
        except ValueError as error:
            self.parser.error(str(error))

    def load_model(self):
        """The model, strictly loaded (`loading.load_model`), its recursion compiled where --compile_recursion asks."""
        from .loading import load_model

        model = load_model(self.args.model, causal_lm=self.task.language_model,
                           trust_remote_code=self.args.trust_remote_code)
        if getattr(self.args, "compile_recursion", "none") != "none":
            compile_recursion(model, self.args.compile_recursion, next(model.parameters()).device.type)
        return model

    def evaluate(self) -> dict:
        """The model, the task's data fitted to it, the scores (`eval_<name>.json` in --output_dir, default the model
        folder), the task's report; the JSON printed as the last line."""
        task, args, options = self.task, self.args, self.options
        model = self.load_model()
        with self.refusals():
            name, data = task.evaluation_data(options, args, model)
            data = task.fit_to_model(data, model)
            path = output_file(args, name) if name else None
        results = task.evaluation_scores(model, data, options, args)
        if path is not None:
            path.write_text(json.dumps(finite_json(results), indent=2))
        shown = task.evaluation_report(name, data, results, options, path)
        print(json.dumps(finite_json(shown)))
        return shown

    def solve(self) -> list[dict]:
        """The task's puzzles (arguments or a file), then the model solves and the task shows them."""
        with self.refusals():
            inputs = self.task.solve_inputs(self.args.puzzles, self.options, self.args)
        model = self.load_model()
        with self.refusals():
            return self.task.solve_puzzles(model, inputs, self.options, self.args)


def output_file(args, name: str) -> Path:
    """`eval_<name>.json` in --output_dir (default: the model folder), created if need be; never one of the files
    the training run wrote, which its card and the Hub upload read."""
    out = Path(args.output_dir or (args.model if Path(args.model).is_dir() else "."))
    path = out / f"eval_{name}.json"
    if path.name == EVAL_FILE and (out / RUN_FILE).is_file():
        raise ValueError(f"these results would go to {path}, which holds the training run's own results: pass "
                         "--output_dir, or give the data file another name")
    out.mkdir(parents=True, exist_ok=True)
    return path


def task_card_of_older_folder(folder: str) -> dict | None:
    """The task's card text for a puzzle-model folder whose run did not record it (saved by an earlier version):
    its task's, where the task it names is one of this package's (a name read from a folder imports no module);
    else None, and the card says what is missing."""
    from .tasks import get_task

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        run = json.loads((folder / RUN_FILE).read_text()) if (folder / RUN_FILE).is_file() else {}
        name = trained_task(str(folder))[0]
        if run.get("card") or name is None:
            return None
        task = get_task(name, import_module=False)
    except (OSError, ValueError, AttributeError):
        return None  # assembling the repository names what is wrong with the folder
    return task.card_text({"size": (run.get("data") or {}).get("maze_size")}, config)
