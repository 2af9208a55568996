"""Bad inputs and faults, tried as a hostile new user would: each row is what they do, the exit code it must end
with (2: something to fix before a run; 1: a run that ended early, with what is kept) and the one line it must print,
or the state it must leave. Nothing may end in a traceback, a silently wrong result, or lost work."""

import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import pytest
import torch
from conftest import PUZZLE_4X4, assert_one_line, lm_args, load_example, run_example, sudoku_args, train_tiny_lm
from safetensors.torch import load_file, save_file

from modeling_lstm_trm import LSTMTRMCarry, LSTMTRMForPuzzleSolving, NestedLSTMForCausalLM, NestedLSTMState
from modeling_lstm_trm.tasks.text.streams import encode_corpus
from modeling_lstm_trm.tokenization import build_text_tokenizer
from modeling_lstm_trm.training import StatefulTrainer
from modeling_lstm_trm.training.safety import finite_json

UNSOLVABLE_4X4 = "...14.2.......4."  # no two givens clash, yet no solution exists


# ----- model folders: each mutation of a good folder, and the one line it must give ---------------------------------

def _config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def _truncate(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def _random_payload(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    header = 8 + struct.unpack("<Q", data[:8])[0]
    (folder / "model.safetensors").write_bytes(data[:header] + os.urandom(len(data) - header))


def _foreign_tokenizer(folder: Path) -> None:
    text = "".join(chr(c) for c in range(0x400, 0x500))  # 256 Cyrillic letters: far more tokens than the model's
    build_text_tokenizer("char", [text]).save_pretrained(folder)


MODEL_CASES = [
    # (what the user does, model kind, mutation, example, argv after --model, exit code, the line must contain)
    ("config says 2 LSTM layers, weights have 1", "lm", lambda f: _config(f, num_lstm_layers=2), "generate",
     [], 2, "do not match its config.json (missing"),
    ("config's hidden size differs from the weights", "lm", lambda f: _config(f, hidden_size=32), "generate",
     [], 2, "wrong shapes"),
    ("truncated safetensors file", "lm", _truncate, "generate", [], 2, "could not load the weights"),
    ("random bytes after a valid safetensors header", "lm", _random_payload, "generate", [], 2, "NaN or infinity"),
    ("config names another model type", "lm", lambda f: _config(f, model_type="llama"), "generate", [], 2,
     "runs only with --trust_remote_code"),
    ("another model's tokenizer in the folder", "lm", _foreign_tokenizer, "generate", [], 2,
     "belongs to another model"),
    ("folder without config.json", "lm", lambda f: (f / "config.json").unlink(), "generate", [], 2,
     "has no config.json"),
    ("sudoku: truncated weights", "sudoku", _truncate, "solve", [PUZZLE_4X4], 2, "could not load the weights"),
    ("sudoku: random weights", "sudoku", _random_payload, "solve", [PUZZLE_4X4], 2, "NaN or infinity"),
    ("sudoku: foreign model type", "sudoku", lambda f: _config(f, model_type="bert"), "evaluate_model",
     ["--grid_size", 4, "--num_puzzles", 4], 2, "runs only with --trust_remote_code"),
]


@pytest.mark.parametrize("what, kind, mutate, example, argv, code, fragment", MODEL_CASES,
                         ids=[case[0] for case in MODEL_CASES])
def test_a_broken_model_folder_is_refused_in_one_line(what, kind, mutate, example, argv, code, fragment, trained,
                                                      tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(trained[kind], folder)
    mutate(folder)
    exit_code, err = run_example(example, ["--model", folder, *argv], capsys)
    assert_one_line(err, exit_code, code, fragment)


USAGE_CASES = [
    # (what the user does, example, argv with {lm} / {sudoku} / {tmp} filled in, the line must contain)
    ("--model is a file", "generate", ["--model", "{lm}/config.json"], "is a file"),
    ("--model does not exist (offline)", "generate", ["--model", "{tmp}/nowhere"], "no such folder"),
    ("--max_new_tokens 0", "generate", ["--model", "{lm}", "--max_new_tokens", 0], "--max_new_tokens"),
    ("sampling with temperature 0", "generate", ["--model", "{lm}", "--temperature", 0], "--temperature > 0"),
    ("evaluate: --file is a folder", "evaluate_model", ["--model", "{lm}", "--file", "{tmp}"], "no such file"),
    ("evaluate: --batch_size 0", "evaluate_model", ["--model", "{sudoku}", "--grid_size", 4, "--batch_size", 0],
     "--batch_size must be at least 1"),
    ("solve: --file is a folder", "solve", ["--model", "{sudoku}", "--file", "{tmp}"], "no such file"),
    ("solve: a 6x6 puzzle for a 4x4 model", "solve", ["--model", "{sudoku}", "1" + "." * 35], "the model solves"),
    ("solve: a malformed puzzle", "solve", ["--model", "{sudoku}", "1x.." * 4], "line 1"),
    ("solve: --batch_size 0", "solve", ["--model", "{sudoku}", "--batch_size", 0, "1..." * 4], "--batch_size"),
    ("push: an unknown flag", "push_to_hub", ["--checkpoint", "{lm}", "--repo-id", "a/b", "--colour"],
     "unrecognized arguments"),
]


@pytest.mark.parametrize("what, example, argv, fragment", USAGE_CASES, ids=[case[0] for case in USAGE_CASES])
def test_a_bad_flag_or_file_is_one_line_and_exit_code_2(what, example, argv, fragment, trained, tmp_path, capsys):
    names = {"lm": trained["lm"], "sudoku": trained["sudoku"], "tmp": tmp_path}
    code, err = run_example(example, [str(a).format(**names) for a in argv], capsys)
    assert_one_line(err, code, 2, fragment)


def test_solve_batches_a_long_file_and_answers_every_puzzle(trained, tmp_path, capsys):
    puzzles = tmp_path / "puzzles.txt"
    puzzles.write_text(f"{PUZZLE_4X4}\n" * 5)
    module = load_example("solve")
    reports = module.main(["--model", str(trained["sudoku"]), "--file", str(puzzles), "--batch_size", "2"])
    assert len(reports) == 5 and len({r["solution"] for r in reports}) == 1  # the same puzzle, batched 2 + 2 + 1


# ----- training: what is checked before any work, and what a run that ends early leaves ------------------------------

def test_checks_before_training_touch_nothing(tmp_path, capsys, monkeypatch):
    """Each of these is refused at once, before data is read or a file written."""
    nine = tmp_path / "nine.txt"
    nine.write_text("." * 81 + "\n")
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("my earlier work")
    new = tmp_path / "new"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("modeling_lstm_trm.hub.get_token", lambda: None)
    cases = [
        (sudoku_args(new, "--eval_files", tmp_path / "missing.txt"), "--eval_files: no such file"),
        (sudoku_args(new, "--eval_files", nine), "does not hold 4x4 puzzles"),
        (sudoku_args(used), "is not empty"),
        (sudoku_args(new, "--max_minutes", 0), "--max_minutes must be positive"),
        (sudoku_args(new, "--push_to_hub", "true", "--hub_model_id", "someone/x"), "not logged in to the Hub"),
        (sudoku_args(new, "--push_to_hub", "true"), "--push_to_hub needs --hub_model_id"),
        (sudoku_args(new, "--resume_from_checkpoint", "true"), "holds no checkpoint-N folder"),
        (sudoku_args(new, "--grid_size", 5), "--grid_size must be one of"),
        (sudoku_args(new, "--eval_puzzles", 0), "--eval_puzzles must be at least 1"),  # PuzzleTask's own check
        (sudoku_args(new, "--no_such_flag", 1), "--no_such_flag"),
        (lm_args(tmp_path, new, "--block_size", 0), "--block_size must be at least 1"),
        (lm_args(tmp_path, new, "--max_minutes", -1), "--max_minutes must be positive"),
        (lm_args(tmp_path, new, "--train_file", tmp_path), "no such file"),
        (["--task", "maze", "--maze_size", 9, "--canvas_size", 7, "--output_dir", new], "--canvas_size 7 is smaller"),
        (["--task", "maze", "--recipe", "big", "--output_dir", new], "--recipe must be one of cpu, loops, maze-hard"),
        (["--task", "maze", "--recipe", "maze-hard", "--schedule_by_time", "true", "--output_dir", new],
         "--schedule_by_time needs --max_minutes"),  # the maze-hard preset has no time limit
        (["--task", "maze", "--maze_style", "mossy", "--output_dir", new], "--maze_style must be one of carved, "
                                                                           "scattered"),
        (["--task", "maze", "--maze_loops", 1.5, "--output_dir", new], "--maze_loops must be a share in [0, 1)"),
        # the model's own settings, with the preset's defaults, before any maze or puzzle is made
        (["--task", "maze", "--mixer", "attention", "--num_heads", 5, "--output_dir", new],
         "--num_heads (5) must divide --hidden_size (64)"),
        (sudoku_args(new, "--mixer", "convolution"), "--mixer must be one of"),
        (sudoku_args(new, "--T_cycles", 0), "--T_cycles must be a positive integer"),
        (["--task", "maze", "--maze_style", "scattered", "--maze_loops", 0, "--output_dir", new],
         "--maze_loops shapes generated carved mazes: it does not go with --maze_style scattered"),
    ]
    for argv, fragment in cases:
        code, err = run_example("train", argv, capsys)
        assert_one_line(err, code, 2, fragment)
        assert not new.exists() or not any(new.iterdir()), argv
    assert [p.name for p in used.iterdir()] == ["notes.txt"] and (used / "notes.txt").read_text() == "my earlier work"


def test_a_block_size_too_long_for_the_text_writes_no_tokenizer(tmp_path, capsys):
    out = tmp_path / "lm"
    code, err = run_example("train", lm_args(tmp_path, out, "--block_size", 100000), capsys)
    assert_one_line(err, code, 2, "lower --block_size")
    assert not (out / "tokenizer.json").exists()


@pytest.mark.parametrize("task", ["lm", "sudoku"])
def test_divergence_stops_training_and_saves_no_broken_model(task, tmp_path, capsys):
    out = tmp_path / "run"
    argv = (lm_args(tmp_path, out) if task == "lm" else sudoku_args(out)) + [
        "--learning_rate", "1e6", "--max_steps", 30, "--save_steps", 2]
    code, err = run_example("train", argv, capsys)
    assert_one_line(err, code, 1, "training diverged at step")
    assert "--learning_rate" in err
    assert not (out / "model.safetensors").exists() and not (out / "eval_results.json").exists()
    for checkpoint in out.glob("checkpoint-*"):  # every checkpoint left behind is finite
        assert all(torch.isfinite(t).all() for t in load_file(checkpoint / "model.safetensors").values())


def test_a_failure_after_training_keeps_the_saved_model(tmp_path, capsys):
    unsolvable = tmp_path / "unsolvable.txt"
    unsolvable.write_text(UNSOLVABLE_4X4 + "\n")
    out = tmp_path / "run"
    code, err = run_example("train", sudoku_args(out, "--max_steps", 3, "--save_strategy", "no", "--eval_files",
                                                  unsolvable), capsys)
    assert_one_line(err, code, 1, f"the trained model is saved in {out.resolve()}")
    assert "evaluation failed after training" in err
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from transformers import TrainerCallback

    class CtrlC(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise KeyboardInterrupt

    original = StatefulTrainer.__init__

    def with_ctrl_c(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(CtrlC())

    monkeypatch.setattr(StatefulTrainer, "__init__", with_ctrl_c)
    out = tmp_path / "run"
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 10, "--save_steps", 100), capsys)
    assert_one_line(err, code, 1, f"--resume_from_checkpoint {out / 'checkpoint-4'}")
    assert (out / "checkpoint-4" / "model.safetensors").exists()
    assert (out / "checkpoint-4" / "carried_state-rank0.safetensors").exists()


def test_resume_refuses_a_checkpoint_that_is_corrupted_or_lacks_its_state(tmp_path, capsys):
    out = tmp_path / "run"
    load_example("train").main([str(a) for a in lm_args(tmp_path, out, "--max_steps", 4, "--save_steps", 2)])
    checkpoint = out / "checkpoint-2"
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    (broken / "optimizer.pt").write_bytes((broken / "optimizer.pt").read_bytes()[:100])
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 6, "--resume_from_checkpoint", broken),
                            capsys)
    assert_one_line(err, code, 2, f"{broken / 'optimizer.pt'} is truncated or corrupted")
    (checkpoint / "carried_state-rank0.safetensors").unlink()
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 6, "--resume_from_checkpoint",
                                              checkpoint), capsys)
    assert_one_line(err, code, 1, "carried_state-rank0.safetensors is missing")


def test_the_hub_token_never_reaches_a_file(tmp_path):
    secret = "hf_secret_token_that_must_not_be_saved"
    out = train_tiny_lm(tmp_path, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1",
                        "--eval_strategy", "no", "--hub_token", secret)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files)
    assert not [p for p in files if secret.encode() in p.read_bytes()]


def test_push_refuses_non_finite_weights(trained, tmp_path, capsys):
    folder = tmp_path / "nan"
    shutil.copytree(trained["lm"], folder)
    weights = load_file(folder / "model.safetensors")
    name = next(iter(weights))
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    code, err = run_example("push_to_hub", ["--checkpoint", folder, "--repo-id", "a/b", "--dry-run", tmp_path / "r"],
                            capsys)
    assert code == 2 and "NaN or infinite weights" in err and not (tmp_path / "r").exists()


# ----- the library: inputs that used to give raw torch errors or silently wrong results ------------------------------

def test_an_integer_zero_one_mask_is_refused_and_row_indices_still_work():
    for state in (NestedLSTMState(h=torch.ones(1, 4, 3), c=torch.ones(1, 4, 3)),
                  LSTMTRMCarry(h=torch.ones(4, 2, 3), c=torch.ones(4, 2, 3), steps=torch.zeros(4, dtype=torch.long),
                               halted=torch.zeros(4, dtype=torch.bool), inputs=torch.zeros(4, 2, dtype=torch.long))):
        with pytest.raises(ValueError, match="pass a bool mask"):
            state.reset(torch.tensor([0, 1, 0, 1]))
        state.reset(torch.tensor([0, 1]))  # distinct row indices
        state.reset(torch.tensor([False, False, False, True]))
    rows_zeroed = NestedLSTMState(h=torch.ones(1, 4, 3), c=torch.ones(1, 4, 3)).reset([0, 1]).h[0, :, 0]
    assert rows_zeroed.tolist() == [0, 0, 1, 1]


def test_float_input_ids_and_an_empty_batch_are_clear_errors(trained):
    from modeling_lstm_trm.loading import load_model

    lm, trm = load_model(str(trained["lm"]), causal_lm=True), load_model(str(trained["sudoku"]))
    assert isinstance(lm, NestedLSTMForCausalLM)
    for model, length in ((lm, 5), (trm, 16)):
        with pytest.raises(ValueError, match="integer token ids"):
            model(torch.ones(2, length))
        with pytest.raises(ValueError, match="empty batch"):
            model(torch.zeros(0, length, dtype=torch.long))


def test_a_text_that_is_mostly_unknown_tokens_warns():
    tokenizer = build_text_tokenizer("char", ["abc"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encode_corpus(["xyz xyz xyz"], tokenizer)
    assert any("unknown token" in str(w.message) for w in caught)


def test_results_with_nan_are_written_as_valid_json():
    text = json.dumps(finite_json({"eval_loss": float("nan"), "scores": [1.0, float("inf")], "steps": 3}))
    assert json.loads(text) == {"eval_loss": None, "scores": [1.0, None], "steps": 3}


# ----- round two: flags that were accepted and ignored, numbers that were not numbers, a model on another task -------

def _without_run_file(trained, tmp_path):
    """A copy of the Sudoku model whose folder does not say what it was trained on."""
    model = tmp_path / "anonymous"
    shutil.copytree(trained["sudoku"], model)
    (model / "training_run.json").unlink()
    config = json.loads((model / "config.json").read_text())
    del config["task"]
    (model / "config.json").write_text(json.dumps(config))
    return model


ROUND_TWO_CASES = [
    # (what the user does, example, argv with {lm} / {sudoku} / {anonymous} / {tmp} filled in, the line must contain)
    ("maze evaluation at two depths", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--grid_size", 5, "--max_steps", 2, 4],
     "4: not a flag of evaluate for --task maze"),
    ("maze evaluation: --depths without --sizes", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--grid_size", 5, "--depths", 2, 4], "--depths goes with --sizes"),
    ("maze evaluation: a path length for several sides", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--sizes", 5, 7, "--min_path_length", 4],
     "--min_path_length goes with --grid_size"),
    ("maze evaluation: depth 0", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--sizes", 5, "--depths", 0, 4], "--depths must be at least 1"),
    ("maze evaluation: nine symmetries", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--grid_size", 5, "--symmetries", 9, "--fixed_point_steps", 2],
     "--symmetries must be 1..8"),
    ("maze evaluation: symmetries without a stop", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--grid_size", 5, "--symmetries", 8],
     "--symmetries stops each image at its fixed point"),
    ("maze solving: symmetries without a stop", "solve",
     ["--model", "{anonymous}", "--task", "maze", "--symmetries", 8, "S#G" + " " * 22],
     "--symmetries stops each image at its fixed point"),
    ("maze solving: --fixed_point_steps 0", "solve",
     ["--model", "{anonymous}", "--task", "maze", "--fixed_point_steps", 0, "S#G" + " " * 22], "--fixed_point_steps"),
    ("maze evaluation with trajectories", "evaluate_model",
     ["--model", "{anonymous}", "--task", "maze", "--grid_size", 5, "--num_trajectories", 4],
     "--num_trajectories 4: not a flag of evaluate for --task maze"),
    ("--fixed_point_steps on Sudoku", "evaluate_model",
     ["--model", "{sudoku}", "--grid_size", 4, "--fixed_point_steps", 2],
     "--fixed_point_steps 2: not a flag of evaluate for --task sudoku"),
    ("--min_rating on a puzzle-per-line file", "evaluate_model",
     ["--model", "{sudoku}", "--file", "{tmp}/p.txt", "--min_rating", 3], "these puzzles have no rating"),
    ("evaluate: --noise_scale nan", "evaluate_model",
     ["--model", "{sudoku}", "--grid_size", 4, "--num_puzzles", 2, "--noise_scale", "nan"], "a finite number"),
    ("solve: --noise_scale nan", "solve", ["--model", "{sudoku}", "--noise_scale", "nan", PUZZLE_4X4],
     "a finite number"),
    ("solve: a Sudoku model asked to solve mazes", "solve", ["--model", "{sudoku}", "--task", "maze", "#" * 25],
     "is a model for sudoku"),
    ("evaluate: a Sudoku model asked for ARC", "evaluate_model",
     ["--model", "{sudoku}", "--task", "arc", "--data_dir", "{tmp}"], "is a model for sudoku"),
    ("solve: a language model asked to solve", "solve", ["--model", "{lm}", PUZZLE_4X4], "is a model for lm"),
    ("evaluate: an empty text file", "evaluate_model", ["--model", "{lm}", "--file", "{tmp}/empty.txt"],
     "empty.txt holds no text"),
    ("generate: --online_lr inf", "generate", ["--model", "{lm}", "--online_levels", "all", "--online_lr", "inf"],
     "online_lr must be a finite positive number"),
    ("make_dataset: --exclude with Sudoku", "make_dataset",
     ["--task", "sudoku", "--num_puzzles", 1, "--output", "{tmp}/out.csv", "--exclude", "{tmp}/p.txt"],
     "--exclude leaves out mazes"),
    ("push: a checkpoint-N folder", "push_to_hub",
     ["--checkpoint", "{tmp}/checkpoint-2", "--repo-id", "a/b", "--dry-run", "{tmp}/repo"],
     "it is a training checkpoint"),
]


@pytest.mark.parametrize("what, example, argv, fragment", ROUND_TWO_CASES, ids=[case[0] for case in ROUND_TWO_CASES])
def test_a_flag_that_would_be_ignored_or_misread_is_refused(what, example, argv, fragment, trained, tmp_path, capsys):
    (tmp_path / "p.txt").write_text(PUZZLE_4X4 + "\n")
    (tmp_path / "empty.txt").write_text("")
    checkpoint = tmp_path / "checkpoint-2"  # what Trainer leaves mid-run: weights and config, no tokenizer
    shutil.copytree(trained["lm"], checkpoint, ignore=shutil.ignore_patterns("tokenizer*", "*.json", "README.md"))
    shutil.copy(trained["lm"] / "config.json", checkpoint)
    names = {"lm": trained["lm"], "sudoku": trained["sudoku"], "tmp": tmp_path,
             "anonymous": _without_run_file(trained, tmp_path)}
    code, err = run_example(example, [str(a).format(**names) for a in argv], capsys)
    assert_one_line(err, code, 2, fragment)
    assert not (tmp_path / "repo").exists() and not (tmp_path / "out.csv").exists()


def test_results_of_eval_files_never_replace_each_other_or_the_held_out_score(tmp_path, capsys):
    new = tmp_path / "new"
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "easy.txt").write_text(PUZZLE_4X4 + "\n")
    (tmp_path / "held_out.txt").write_text(PUZZLE_4X4 + "\n")
    (tmp_path / "train.csv").write_text("source,question,answer,rating\n")
    for flags, fragment in (
            (["--eval_files", tmp_path / "held_out.txt"], "like the run's own 'held_out' result"),
            (["--eval_files", tmp_path / "d1" / "easy.txt", tmp_path / "d2" / "easy.txt"],
             f"like {tmp_path / 'd1' / 'easy.txt'}"),
            (["--grid_size", 9, "--train_file", tmp_path / "train.csv", "--test_file", tmp_path / "train.csv"],
             "the held-out score would be on training puzzles")):
        code, err = run_example("train", sudoku_args(new, *flags), capsys)
        assert_one_line(err, code, 2, fragment)
        assert not new.exists() or not any(new.iterdir())


def test_a_puzzle_with_several_solutions_is_reported(tmp_path, capsys):
    from modeling_lstm_trm.tasks.sudoku.puzzles import solve_file

    puzzles = tmp_path / "loose.txt"
    puzzles.write_text(PUZZLE_4X4 + "\n" + "1" + "." * 15 + "\n")  # the second has many solutions
    data = solve_file(puzzles)
    assert len(data) == 2
    assert "1 of 2 puzzles have more than one solution (first: puzzle 2)" in capsys.readouterr().err


def test_an_arc_task_without_test_inputs_or_a_file_of_the_wrong_shape_is_refused(tmp_path):
    from modeling_lstm_trm.tasks.arc.arc_data import load_split

    pair = {"input": [[1]], "output": [[2]]}
    for challenges, fragment in (({"t": {"train": [pair], "test": []}}, "task t: a task needs 'train' pairs and "
                                                                         "'test' inputs"),
                                 ([{"train": [pair]}], "must map task ids to tasks")):
        (tmp_path / "arc-agi_x_challenges.json").write_text(json.dumps(challenges))
        with pytest.raises(ValueError, match=fragment):
            load_split(tmp_path, "x", need_solutions=False)


@pytest.mark.parametrize("content, fragment", [(b"", "holds no text"), (b"  \n\n", "holds no text"),
                                               (b"caf\xe9 au lait\n", "is not UTF-8 text (byte 3)"),
                                               (b"text\x00\x01\x02 more", "holds NUL bytes")])
def test_a_text_file_that_is_not_text_is_refused_before_training(content, fragment, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    code, err = run_example("train", lm_args(tmp_path, tmp_path / "out", "--train_file", bad), capsys)
    assert_one_line(err, code, 2, f"--train_file: {bad} {fragment}")


def test_a_rating_too_large_for_an_integer_is_a_row_problem(tmp_path):
    from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import _ratings

    ratings, problems = _ratings([3, 1e30, "x"])
    assert ratings[0] == 3 and "at most 19 digits" in problems[1] and problems[2]


def test_the_python_api_speaks_in_our_words(tmp_path):
    from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving, NestedLSTMConfig

    with pytest.raises(ValueError, match="`gate_bias_init` must be a finite number"):
        LSTMTRMConfig(gate_bias_init=float("nan"))
    with pytest.raises(ValueError, match="`expansion` must be a finite number"):
        LSTMTRMConfig(expansion=float("inf"))
    config = dict(vocab_size=5, seq_len=16, puzzle_emb_ndim=0, num_layers=1, T_cycles=1, n_cycles=1,
                  forward_dtype="float32")
    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(hidden_size=16, **config))
    other = LSTMTRMForPuzzleSolving(LSTMTRMConfig(hidden_size=8, **config))
    x = torch.randint(0, 5, (4, 16))
    y = torch.randint(1, 5, (4, 16))
    assert torch.equal(model(x.to(torch.int8), labels=y.int()).logits, model(x, labels=y).logits)
    with pytest.raises(ValueError, match="`labels` must be integer token ids"):
        model(x, labels=y.float())
    with pytest.raises(ValueError, match="comes from another model"):
        model(x, cache=other(x).cache)
    with pytest.raises(ValueError, match="must index the batch of size 4"):
        model(x).cache.reset([99])
    with pytest.raises(ValueError, match="`max_steps` must be an integer"):
        model.solve(x, max_steps=2.5)
    with pytest.raises(ValueError, match="`noise_scale` must be a finite number"):
        model.solve(x, num_trajectories=2, noise_scale=float("nan"))
    lm = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=11, hidden_size=8)).eval()
    ids = torch.randint(0, 11, (2, 5))
    assert torch.equal(lm(ids, labels=ids.int()).loss, lm(ids, labels=ids).loss)
    with pytest.raises(ValueError, match="labels must be integer token ids"):
        lm(ids, labels=ids.float())
    (tmp_path / "a_file").write_text("not a folder")
    for m in (model, lm):
        with pytest.raises(ValueError, match="is a file, not a folder"):
            m.save_pretrained(tmp_path / "a_file")


# ----- round three: a model folder chooses nothing, bounded work, the edges of the API -------------------------------

def test_the_api_refuses_what_it_cannot_use_in_our_words(tmp_path):
    from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving, NestedLSTMConfig
    from modeling_lstm_trm.models.lstm_trm.modeling_lstmtrm import fixed_point_stop

    config = dict(vocab_size=5, seq_len=16, hidden_size=16, num_layers=1, T_cycles=1, n_cycles=1,
                  forward_dtype="float32")
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(puzzle_emb_ndim=0, **config)).eval()
    with_puzzle_emb = LSTMTRMForPuzzleSolving(LSTMTRMConfig(puzzle_emb_ndim=16, **config)).eval()
    x = torch.randint(0, 5, (2, 16))
    with pytest.raises(TypeError, match="the backbone and takes no `labels`"):
        model.model(x, labels=x)
    carry = model(x).cache
    with pytest.raises(ValueError, match="holds torch.float64 / torch.float64 states"):
        model(x, cache=LSTMTRMCarry(**{**vars(carry), "h": carry.h.double(), "c": carry.c.double()}))
    with pytest.raises(ValueError, match="holds 17 positions, but this model reads 16 .*another model"):
        model(x, cache=with_puzzle_emb(x).cache)
    with pytest.raises(ValueError, match="`fixed_point_steps` must be an integer of at least 1"):
        fixed_point_stop(torch.zeros(3, 2, 16, dtype=torch.long), torch.zeros(3, 2), 0)
    lm = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=7, hidden_size=8)).eval()
    with pytest.raises(TypeError, match="`cache` must be a NestedLSTMState .* got LSTMTRMCarry"):
        lm.generate(torch.zeros(2, 3, dtype=torch.long), cache=carry, max_new_tokens=2)
    model.save_pretrained(tmp_path / "trm")
    lm.save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="this config is a 'lstm_trm' model's, not a 'nested_lstm' one"):
        NestedLSTMForCausalLM.from_pretrained(tmp_path / "trm")
    with pytest.raises(ValueError, match="this config is a 'nested_lstm' model's, not a 'lstm_trm' one"):
        LSTMTRMForPuzzleSolving.from_pretrained(tmp_path / "lm")


def test_text_is_read_as_written(tmp_path, capsys):
    """A literal "<eos>" in a corpus is text, not the end of a document; a line longer than a tokenizer's piece keeps
    its words; a prompt's characters the tokenizer does not know are named, not dropped without a word."""
    char = build_text_tokenizer("char", ["hello <eos> world"])
    tokens, starts, _ = encode_corpus(["a<eos>b"], char)
    assert list(tokens).count(char.eos_token_id) == 1 and tokens[-1] == char.eos_token_id and starts.sum() == 1
    word = build_text_tokenizer("word", ["ab cd\n"])
    tokens, _, _ = encode_corpus(["ab " * 30000 + "\n"], word)  # 90,000 characters on one line
    assert len(tokens) == 30002 and word.unk_token_id not in tokens
    generate = load_example("generate")
    ids = generate.prompt_ids(char, "héllo")
    assert len(ids) == 5 and ids.count(char.unk_token_id) == 1
    assert "does not know 'é' in the prompt" in capsys.readouterr().err


EVIL_TASK = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


@pytest.mark.parametrize("recorded_in", ["config.json", "training_run.json"])
def test_a_task_named_by_a_model_folder_imports_nothing_unless_the_user_asks(recorded_in, trained, tmp_path, capsys,
                                                                             monkeypatch):
    """A folder whose config (or, for older folders, training run) names a module of its own choosing: no command
    imports it (its code would run), each says which file named it; the user's own --task or --trust_remote_code
    imports it as a task module of theirs."""
    from modeling_lstm_trm.hub import HubError, build_model_card

    code_dir, marker = tmp_path / "on_path", tmp_path / "marker"
    code_dir.mkdir()
    module = f"evil_task_of_{recorded_in.split('.')[0]}"  # a fresh name: a module imported once is not run again
    (code_dir / f"{module}.py").write_text(EVIL_TASK.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(code_dir))  # a user whose own task modules are importable
    folder = tmp_path / "model"
    shutil.copytree(trained["sudoku"], folder)
    config, run = (json.loads((folder / name).read_text()) for name in ("config.json", "training_run.json"))
    run.pop("card")  # as a folder written before runs recorded their card text
    if recorded_in == "config.json":
        config["task"] = module
    else:
        config.pop("task")
        run["task"] = module
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "training_run.json").write_text(json.dumps(run))
    named = f"{folder}/{recorded_in} names task '{module}'"
    for example, argv in (("evaluate_model", ["--help"]), ("evaluate_model", ["--grid_size", 4]),
                          ("solve", [PUZZLE_4X4])):
        code, err = run_example(example, ["--model", folder, *argv], capsys)
        assert_one_line(err, code, 2, named)
        assert f"--task {module}" in err.splitlines()[-1] and not marker.exists()
    code, err = run_example("push_to_hub", ["--checkpoint", folder, "--repo-id", "a/b", "--dry-run", tmp_path / "r"],
                            capsys)
    assert_one_line(err, code, 2, "does not describe the model's task for its card")
    with pytest.raises(HubError):
        build_model_card(folder)
    assert not marker.exists() and not (tmp_path / "r").exists()
    code, err = run_example("evaluate_model", ["--model", folder, "--trust_remote_code", "--grid_size", 4], capsys)
    assert marker.exists() and f"module {module} defines no TASK" in err  # the user's choice: imported


def test_a_saved_folder_never_shadows_the_package(trained, tmp_path):
    """Python puts the working directory first on the import path: run inside a model folder or its Hub repository,
    `import modeling_lstm_trm` and the converter's documented command must still run the package's code."""
    import subprocess
    import sys

    repo = tmp_path / "repo"
    load_example("push_to_hub").main(["--checkpoint", str(trained["sudoku"]), "--repo-id", "a/b", "--dry-run",
                                      str(repo)])
    for folder in (trained["sudoku"], repo):
        names = {path.stem for path in folder.glob("*.py")}
        assert "modeling_lstm_trm" not in names and "modeling_lstmtrm" in names
        found = subprocess.run([sys.executable, "-c", "import modeling_lstm_trm; print(modeling_lstm_trm.__file__)"],
                               cwd=folder, capture_output=True, text=True, check=True).stdout
        assert Path(found.strip()).parent.name == "modeling_lstm_trm"
    old = tmp_path / "older_download"  # a checkpoint folder of an earlier version, which shipped that file
    old.mkdir()
    (old / "modeling_lstm_trm.py").write_text(EVIL_TASK.format(marker=str(tmp_path / "marker")))
    converter = Path(__file__).resolve().parents[1] / "examples" / "convert_trm_checkpoint.py"
    done = subprocess.run([sys.executable, str(converter), "--help"], cwd=old, capture_output=True, text=True)
    assert done.returncode == 0 and "--checkpoint" in done.stdout and not (tmp_path / "marker").exists()


class _RunsCode:
    """A pickled object whose loading would run code (it writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def _trm_files(folder: Path) -> dict:
    """A TRM run's files for the converter: the MLP fixture's config as all_config.yaml, and its weights."""
    import yaml

    from modeling_lstm_trm.models.lstm_trm.convert_trm_original_to_hf import config_from_trm

    arch = json.loads((Path(__file__).parent / "fixtures" / "trm" / "mlp.json").read_text())["config"]
    (folder / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch}))
    state = LSTMTRMForPuzzleSolving(config_from_trm(arch)).state_dict()
    return {"_orig_mod.model.inner.lm_head.weight": state["lm_head.weight"]}


CONVERTER_CASES = [
    # (what the user gives, how the files are made wrong, the line must contain)
    ("a pickle that would run code", lambda f, m: torch.save({"x": _RunsCode(m)}, f / "ckpt"),
     "holds more than tensors, which weights-only loading refuses"),
    ("a value that is not a tensor", lambda f, m: torch.save({"_orig_mod.model.inner.lm_head.weight": 3}, f / "ckpt"),
     "holds a int under '_orig_mod.model.inner.lm_head.weight', not a tensor"),
    ("a truncated checkpoint", lambda f, m: (f / "ckpt").write_bytes(_saved(_trm_files(f))[:200]),
     "is truncated or not a file torch.save wrote"),
    ("a config that is not YAML", lambda f, m: (f / "all_config.yaml").write_text("arch: [unclosed"),
     "cannot be read as TRM's all_config.yaml"),
    ("a config without its arch section", lambda f, m: (f / "all_config.yaml").write_text("lr: 1\n"),
     "has no 'arch' section"),
    ("an output folder that is a file", lambda f, m: (f / "out").write_text("mine"), "--output_dir"),
]


def _saved(state: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("what, spoil, fragment", CONVERTER_CASES, ids=[case[0] for case in CONVERTER_CASES])
def test_the_converter_refuses_bad_files_in_one_line_naming_them(what, spoil, fragment, tmp_path, capsys):
    marker = tmp_path / "marker"
    torch.save(_trm_files(tmp_path), tmp_path / "ckpt")
    spoil(tmp_path, marker)
    code, err = run_example("convert_trm_checkpoint", ["--checkpoint", tmp_path / "ckpt", "--config",
                                                       tmp_path / "all_config.yaml", "--output_dir", tmp_path / "out"],
                            capsys)
    assert_one_line(err, code, 2, fragment)
    line = err.strip().splitlines()[-1]
    assert "Error:" not in line and not marker.exists()  # our words, not an exception's type; no code ran
    assert what == "an output folder that is a file" or (not (tmp_path / "out").exists() and "ckpt" in line
                                                          or "all_config.yaml" in line)


def _maze_model(trained, tmp_path) -> Path:
    """A maze model with a 4x4 canvas (the tiny Sudoku model's network, recorded as a maze model)."""
    folder = tmp_path / "maze_model"
    shutil.copytree(trained["sudoku"], folder)
    _config(folder, task="maze")
    return folder


BOUNDED_CASES = [
    # (what the user types, example, argv ({maze} and {tmp} filled in), the line must contain)
    ("a maze side of 2000", "train", ["--task", "maze", "--maze_sizes", 7, 2000, "--output_dir", "{tmp}/o"],
     "--maze_sizes must be a maze side in 5..99, got 2000"),
    ("100,000 progressive steps", "train", ["--task", "maze", "--progressive_steps", 100000, "--output_dir", "{tmp}/o"],
     "--progressive_steps must be in 0..256"),
    ("a path no 50x50 maze has", "train", ["--task", "maze", "--maze_size", 50, "--min_path_length", 5000,
                                           "--output_dir", "{tmp}/o"], "no 50x50 carved maze has a shortest path"),
    ("sides larger than the model's canvas", "evaluate_model", ["--model", "{maze}", "--sizes", 31],
     "--sizes 31: the model reads 4x4 grids"),
    ("100,000 test-time steps", "evaluate_model", ["--model", "{maze}", "--sizes", 5, "--depths", 8, 100000],
     "--depths must be at least 1 and at most 4096"),
    ("100,000 trajectories", "solve", ["--model", "{sudoku}", "--num_trajectories", 100000, PUZZLE_4X4],
     "--num_trajectories must be in 1..256"),
    ("100,000 trajectories on Sudoku", "evaluate_model", ["--model", "{sudoku}", "--grid_size", 4,
                                                          "--num_trajectories", 100000], "--num_trajectories must be"),
    ("a maze dataset of 500x500 mazes", "make_dataset", ["--task", "maze", "--size", 500, "--num_puzzles", 1,
                                                         "--output", "{tmp}/m.csv"], "--size must be a maze side"),
]


@pytest.mark.parametrize("what, example, argv, fragment", BOUNDED_CASES, ids=[case[0] for case in BOUNDED_CASES])
def test_a_flag_that_sizes_work_is_bounded_and_refused_at_once(what, example, argv, fragment, trained, tmp_path,
                                                                capsys):
    import time

    names = {"maze": _maze_model(trained, tmp_path), "sudoku": trained["sudoku"], "tmp": tmp_path}
    started = time.monotonic()
    code, err = run_example(example, [str(a).format(**names) for a in argv], capsys)
    elapsed = time.monotonic() - started
    assert_one_line(err, code, 2, fragment)
    assert elapsed < 3, f"refused only after {elapsed:.1f} s"  # arithmetic decides it: no maze is generated first
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.csv").exists()
