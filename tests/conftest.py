import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import GenerationMixin

# Tests never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# The name `generate` gives the carried state, in its keyword arguments and in `return_dict_in_generate` outputs:
# `cache` from transformers 5.24 on, `past_key_values` before.
GENERATE_STATE = ("cache" if "cache" in inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
                  else "past_key_values")

_BLOCK_PACKAGE = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "modeling_lstm_trm" or name.startswith("modeling_lstm_trm."):
            raise ModuleNotFoundError(f"{name} is deliberately not importable in this process")
        return None
sys.meta_path.insert(0, _Blocker())
sys.path = [p for p in sys.path if p not in ("", ".")]
"""


def run_without_package(code: str, cwd, modules_cache) -> str:
    """Run `code` in a fresh Python in which `modeling_lstm_trm` cannot be imported; return its stdout."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(modules_cache), PYTHONPATH="")
    script = _BLOCK_PACKAGE + "\ntry:\n    import modeling_lstm_trm\nexcept ModuleNotFoundError:\n    pass\n" \
        "else:\n    raise SystemExit('package was importable')\n" + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture
def without_package(tmp_path):
    def run(code: str) -> str:
        return run_without_package(code, cwd=tmp_path, modules_cache=tmp_path / "hf_modules")
    return run


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

_KILLABLE_TRAIN = """
import os, signal, sys
sys.path.insert(0, {examples!r})
import train
from transformers import TrainerCallback
from modeling_lstm_trm.training import StatefulTrainer

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)

original = StatefulTrainer.__init__
def patched(self, *args, **kwargs):
    original(self, *args, **kwargs)
    self.add_callback(Kill())
StatefulTrainer.__init__ = patched
train.main({argv!r})
"""


@pytest.fixture
def run_train():
    """Run examples/train.py's `main(argv)` in a fresh process that kills itself with SIGKILL after step `kill_at`."""
    def run(argv: list[str], kill_at: int | None = None) -> subprocess.CompletedProcess:
        code = _KILLABLE_TRAIN.format(examples=str(EXAMPLES), kill_at=kill_at or -1, argv=list(argv))
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    return run


def load_example(name, folder: Path = EXAMPLES, prefix: str = "example"):
    """An example script as a module (its `main(argv)` runs in this process); `folder=BENCHMARKS` for a benchmark's."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def train_tiny_lm(folder: Path, *extra: str) -> Path:
    """examples/train.py --task lm on a small text, with a 16-wide model; returns the output folder."""
    text = folder / "corpus.txt"
    text.write_text("".join(f"the old king {i % 7} sailed the sea.\n" for i in range(300)))
    out = folder / "lm"
    load_example("train").main([
        "--task", "lm", "--train_file", str(text), "--tokenizer", "char", "--output_dir", str(out),
        "--hidden_size", "16", "--level_update_every", "1", "4", "--block_size", "16",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--save_strategy", "no",
        "--disable_tqdm", "true", *extra])
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One tiny run of each kind through examples/train.py (read-only: copy a folder before changing it)."""
    root = tmp_path_factory.mktemp("runs")
    lm = train_tiny_lm(root, "--max_steps", "6", "--eval_steps", "6")
    sudoku = root / "sudoku"
    load_example("train").main([
        "--grid_size", "4", "--output_dir", str(sudoku), "--max_steps", "6", "--train_puzzles", "50",
        "--eval_puzzles", "10", "--eval_steps", "1000", "--save_strategy", "no", "--eval_files", "none",
        "--disable_tqdm", "true"])
    return {"lm": lm, "sudoku": sudoku}


# ----- the command lines, run as a user runs them -------------------------------------------------------------------

PUZZLE_4X4 = "1.....2..3.....4"


def run_example(name: str, argv: list, capsys) -> tuple[int, str]:
    """Run an example as its command line does; returns the exit code and what it printed on stderr."""
    from modeling_lstm_trm.cli import run_cli

    module = load_example(name)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: module.main([str(a) for a in argv]))
    return exit_info.value.code, capsys.readouterr().err


def assert_one_line(err: str, code: int, expected_code: int, fragment: str) -> None:
    """The command ended with `expected_code`, and its last line on stderr (warnings aside) holds `fragment`."""
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line and "warn(" not in line]
    assert code == expected_code, err
    assert fragment in lines[-1], err
    assert "Traceback" not in err, err


def lm_args(folder: Path, out: Path, *extra) -> list:
    """examples/train.py flags of a tiny character-level LM run on a small text written into `folder`."""
    text = folder / "corpus.txt"
    if not text.exists():
        text.write_text("".join(f"the old king {i % 7} sailed the sea.\n" for i in range(300)))
    return ["--task", "lm", "--train_file", text, "--tokenizer", "char", "--output_dir", out, "--hidden_size", 16,
            "--level_update_every", 1, 4, "--block_size", 16, "--per_device_train_batch_size", 4,
            "--disable_tqdm", "true", "--eval_strategy", "no", *extra]


def sudoku_args(out: Path, *extra) -> list:
    """examples/train.py flags of a tiny 4x4 Sudoku run."""
    return ["--grid_size", 4, "--output_dir", out, "--train_puzzles", 50, "--eval_puzzles", 10, "--eval_files",
            "none", "--disable_tqdm", "true", *extra]
