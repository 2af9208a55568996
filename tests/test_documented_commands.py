"""Every command the README and benchmarks/README.md show still runs: each one, with `--help` added, parses up to the
help (exit 0), and every flag it uses is one its script (for the task it names, or the task of the model it reads)
lists. And every `--help` of every command and task works."""

import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from conftest import load_example

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
COMMAND = re.compile(r"(?:accelerate launch(?: --[\w-]+(?: \d+)?)*|python) ((?:examples|benchmarks)/\w+\.py)(.*)")


def documented_commands() -> list[tuple[str, str]]:
    """(script, the rest of the command line) of every command in the documents' code blocks and inline code."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        lines = [line.split("  #")[0] for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        inline = re.sub(r"```.*?```", "", text, flags=re.S)
        spans = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", inline)]
        for candidate in lines + spans:
            match = COMMAND.search(candidate)
            if match:
                found.append((match.group(1), match.group(2).strip()))
    return sorted(set(found))


COMMANDS = documented_commands()


def test_the_documents_show_commands_of_every_kind():
    scripts = {script for script, _ in COMMANDS}
    assert {"examples/train.py", "examples/evaluate_model.py", "examples/solve.py", "examples/generate.py",
            "examples/make_dataset.py", "examples/push_to_hub.py", "examples/convert_trm_checkpoint.py"} <= scripts
    assert len([s for s in scripts if s.startswith("benchmarks/")]) >= 8


@pytest.fixture(scope="module")
def models(trained, tmp_path_factory):
    """A folder of each task's model, for the commands that read one (only its task matters to --help)."""
    import json

    root = tmp_path_factory.mktemp("models")
    folders = {"sudoku": trained["sudoku"], "lm": trained["lm"]}
    for task in ("maze", "arc"):
        folders[task] = root / task
        shutil.copytree(trained["sudoku"], folders[task])
        config = json.loads((folders[task] / "config.json").read_text())
        (folders[task] / "config.json").write_text(json.dumps({**config, "task": task}))
    return folders


def model_for(path: str, folders: dict) -> Path:
    """The documents name model folders after their task (runs/x/...: the maze extrapolation benchmark's)."""
    for task, words in (("maze", ("maze", "runs/x/")), ("arc", ("arc",)),
                        ("lm", ("nested", "wikitext", "shakespeare"))):
        if any(word in path for word in words):
            return folders[task]
    return folders["sudoku"]


PLACEHOLDERS = {"N", "L", "K", "R"}  # numbers the documents leave to the reader


def run_help(script: str, argv: list[str], capsys) -> str:
    """The script run in this process with `argv + ["--help"]`; what it printed (it must exit 0)."""
    capsys.readouterr()
    if script.startswith("examples/"):
        with pytest.raises(SystemExit) as done:
            load_example(Path(script).stem).main(argv + ["--help"])
    else:
        saved = sys.argv
        sys.argv = [script, *argv, "--help"]
        try:
            with pytest.raises(SystemExit) as done:
                runpy.run_path(str(ROOT / script), run_name="__main__")
        finally:
            sys.argv = saved
    printed = capsys.readouterr()
    assert done.value.code in (0, None), printed.err
    return printed.out


@pytest.mark.parametrize("script, rest", COMMANDS, ids=[f"{s} {r}"[:90] for s, r in COMMANDS])
def test_a_documented_command_parses_and_its_flags_exist(script, rest, models, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = ["3" if word in PLACEHOLDERS else word for word in shlex.split(rest)]
    task = argv[argv.index("--task") + 1] if "--task" in argv else None
    if task and "." in task:
        pytest.skip(f"--task {task}: the documents' example of a task of your own")
    for k, word in enumerate(argv[:-1]):
        if word == "--model":
            argv[k + 1] = str(models[task] if task in models else model_for(argv[k + 1], models))
    passed_on = []  # a benchmark's flags for examples/train.py, after "--"
    if "--" in argv:
        cut = argv.index("--")
        argv, passed_on = argv[:cut], argv[cut + 1:]
    runs = [(script, argv)] + ([("examples/train.py", ["--task", "maze", *passed_on])] if passed_on else [])
    for script, argv in runs:
        help_text = run_help(script, argv, capsys)
        listed = set(re.findall(r"--[\w-]+", help_text))
        used = {word.split("=")[0].lstrip("[") for word in argv if word.lstrip("[").startswith("--")}
        assert used <= listed | {"--help"}, f"{script} does not list {sorted(used - listed)}"


TASK_NAMES = ["sudoku", "maze", "arc", "lm"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_help_of_every_task_works(task, models, capsys):
    assert "--output_dir" in run_help("examples/train.py", ["--task", task], capsys)
    for script in ("examples/evaluate_model.py", "examples/solve.py"):
        if task == "lm" and script.endswith("solve.py"):
            continue  # the nested LM solves nothing: refused in one line (tests/test_bad_inputs.py)
        assert "--model" in run_help(script, ["--model", str(models[task])], capsys)
    if task in ("sudoku", "maze"):
        assert "--num_puzzles" in run_help("examples/make_dataset.py", ["--task", task], capsys)
    for script in ("examples/generate.py", "examples/push_to_hub.py", "examples/convert_trm_checkpoint.py",
                   "examples/evaluate_model.py", "examples/solve.py"):
        assert "usage" in run_help(script, [], capsys)


def test_the_readmes_python_runs(tmp_path, monkeypatch):
    """The README's Python blocks, run as they are against a (tiny) 6x6 model where they read the main job's folder."""
    out = tmp_path / "m6"
    load_example("train").main(["--grid_size", "6", "--max_steps", "2", "--output_dir", str(out), "--eval_files",
                                "none", "--train_puzzles", "16", "--eval_puzzles", "4", "--disable_tqdm", "true",
                                "--save_strategy", "no", "--eval_strategy", "no", "--hidden_size", "16"])
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    names = {}  # one session, as a reader runs the blocks one after another
    for block in blocks:
        exec(compile(block.replace("outputs/lstm-trm-sudoku-6x6", str(out)), "README.md", "exec"), names)
