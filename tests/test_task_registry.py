"""A task is one object: a new puzzle task, written in its own folder and nowhere else, trains through
examples/train.py, evaluates through examples/evaluate_model.py, solves and draws through examples/solve.py, and gets
a model card through the Hub dry run; the saved model says which task it is, so no example guesses, and a task that is
not one of the package's is imported only when the user names it (a name read from a folder runs no code)."""

import json

import pytest
from conftest import assert_one_line, load_example, run_example

# The whole task: a module of a few dozen lines in a folder of the user's (here: the test's temporary folder).
SWAP_TASK = '''
import numpy as np

from modeling_lstm_trm.tasks.task import CardText, PuzzleSet, PuzzleTask


class SwapColours(PuzzleTask):
    """Every cell's colour swapped (a <-> b): a toy puzzle with a rule that holds under the grid's symmetries."""

    charset = ".ab"
    card = CardText(title="{size}x{size} swapped grids", task_type="grid-transformation", task_name="Colour swap",
                    tag="colour-swap", unit="grids", input_hint="a and b, row by row",
                    augmentation="the 8 symmetries of the square", limitations="a toy for tests.")
    default_preset = {"hidden_size": 32, "num_layers": 1, "T_cycles": 1, "n_cycles": 1, "halt_max_steps": 2,
                      "forward_dtype": "float32", "max_steps": 200, "per_device_train_batch_size": 32,
                      "learning_rate": 3e-3, "warmup_steps": 10, "save_strategy": "no", "report_to": "none",
                      "logging_steps": 40, "disable_tqdm": True, "train_puzzles": 64, "eval_puzzles": 32,
                      "ema_decay": 0.0}

    def generate(self, count, seed):
        questions = np.random.default_rng(seed).integers(1, 3, size=(count, 3, 3))
        return PuzzleSet(questions, 3 - questions)


TASK = SwapColours()
'''


@pytest.fixture(scope="module")
def swap_model(tmp_path_factory):
    """The toy task's folder on the import path, and a model trained on it by examples/train.py."""
    folder = tmp_path_factory.mktemp("user_tasks")
    (folder / "swap_colours").mkdir()
    (folder / "swap_colours" / "__init__.py").write_text(SWAP_TASK)
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(folder))
    out = folder / "model"
    results = load_example("train").main(["--task", "swap_colours", "--output_dir", str(out)])
    yield out, results
    patch.undo()


def test_a_new_task_trains_through_train_py_and_its_model_records_the_task(swap_model):
    out, results = swap_model
    assert json.loads((out / "config.json").read_text())["task"] == "swap_colours"
    assert results["held_out"]["puzzles"] == 32 and results["held_out"]["exact_accuracy"] >= 0.9
    assert json.loads((out / "eval_results.json").read_text())["held_out"] == results["held_out"]
    assert (out / "tokenizer.json").is_file() and (out / "training_curves.png").is_file()


def test_a_new_task_evaluates_through_evaluate_model_py_when_the_user_names_it(swap_model, tmp_path):
    out, results = swap_model
    (tmp_path / "grids.txt").write_text("abaabbaab babbaabba\nbbbbbbbbb aaaaaaaaa  // all b\n")
    scores = load_example("evaluate_model").main(["--model", str(out), "--task", "swap_colours", "--file",
                                                  str(tmp_path / "grids.txt"), "--output_dir", str(tmp_path)])
    assert scores["puzzles"] == 2 and 0 <= scores["exact_accuracy"] <= 1
    assert json.loads((tmp_path / "eval_grids.json").read_text()) == scores
    generated = load_example("evaluate_model").main(["--model", str(out), "--num_puzzles", "50", "--output_dir",
                                                     str(tmp_path), "--trust_remote_code"])
    assert generated["puzzles"] == 50 and generated["exact_accuracy"] >= 0.9


def test_a_new_task_solves_and_draws_through_solve_py(swap_model, tmp_path):
    out, _ = swap_model
    reports = load_example("solve").main(["--model", str(out), "--task", "swap_colours", "abaabbaab", "--png",
                                          str(tmp_path / "trace.png"), "--trace"])
    assert reports[0]["answer"] == "babbaabba" and reports[0]["halted_at"] >= 1
    assert (tmp_path / "trace.png").stat().st_size > 0


def test_a_new_task_gets_its_model_card_from_the_hub_dry_run(swap_model, tmp_path):
    out, _ = swap_model
    load_example("push_to_hub").main(["--checkpoint", str(out), "--repo-id", "someone/swap", "--dry-run",
                                      str(tmp_path / "repo")])
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "3x3 swapped grids" in card and "Colour swap" in card and "colour-swap" in card


def test_bad_puzzles_for_a_new_task_are_one_line_errors_naming_the_place(swap_model, tmp_path, capsys):
    out, _ = swap_model
    code, err = run_example("solve", ["--model", out, "--task", "swap_colours", "abxabbaab"], capsys)
    assert_one_line(err, code, 2, "puzzle 1: 'x' is not one of '.ab'")
    for second, message in (("abaab", "5 characters is not a square grid"), ("abab", "a 2x2 grid after 3x3 ones")):
        (tmp_path / "bad.txt").write_text(f"abaabbaab babbaabba\n{second}\n")
        code, err = run_example("evaluate_model", ["--model", out, "--task", "swap_colours", "--file",
                                                   tmp_path / "bad.txt"], capsys)
        assert_one_line(err, code, 2, f"bad.txt, line 2: {message}")


def test_an_unknown_task_is_a_one_line_error(tmp_path, capsys):
    code, err = run_example("train", ["--task", "no_such_task_module", "--output_dir", tmp_path / "out"], capsys)
    assert_one_line(err, code, 2, "--task no_such_task_module: not one of sudoku, lm, maze, arc")
    code, err = run_example("train", ["--task", "json", "--output_dir", tmp_path / "out"], capsys)
    assert_one_line(err, code, 2, "module json defines no TASK")
