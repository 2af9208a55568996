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
