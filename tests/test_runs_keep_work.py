"""Nothing lost, round two: names from data never become paths, one run per output folder, resuming and overwriting
never take another run's files, evaluation never writes over training results, and every way a run can end early
(SIGTERM, a failure mid-run, an interrupt mid-step) ends in a checkpoint that resumes exactly."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import PUZZLE_4X4, assert_one_line, lm_args, load_example, run_example, sudoku_args
from safetensors.torch import load_file
from transformers import TrainerCallback

from modeling_lstm_trm.checks import check_name
from modeling_lstm_trm.tasks.sudoku.hard_puzzles import generate_hard_puzzles
from modeling_lstm_trm.training import StatefulTrainer


def with_callback(monkeypatch, callback: TrainerCallback) -> None:
    """Every StatefulTrainer made from now on in this test also runs `callback`."""
    original = StatefulTrainer.__init__

    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(callback)

    monkeypatch.setattr(StatefulTrainer, "__init__", patched)


def tiny_lm_run(tmp_path, out, *extra):
    load_example("train").main([str(a) for a in lm_args(tmp_path, out, *extra)])
    return out


# ----- names from data --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../EVIL_outside", "a/b", ".hidden", "", "..", "x/../../y", None])
def test_a_name_that_could_leave_its_folder_is_refused(name):
    with pytest.raises(ValueError, match="not a plain name"):
        check_name(name, "the split")
    assert check_name("evaluation2", "the split") == "evaluation2"


def test_a_model_folders_split_name_never_becomes_a_path(trained, tmp_path, capsys):
    model = tmp_path / "deep" / "er" / "model"
    shutil.copytree(trained["sudoku"], model)
    data = tmp_path / "data"
    data.mkdir()
    (data / "arc-agi_EVIL_outside_challenges.json").write_text("{}")  # "matching data" beside it
    run = json.loads((model / "training_run.json").read_text())
    run.update(task="arc", data={"source_dir": str(data), "test_split": "../../../../EVIL_outside"})
    (model / "training_run.json").write_text(json.dumps(run))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "task": "arc"}))
    code, err = run_example("evaluate_model", ["--model", model, "--data_dir", data], capsys)
    assert_one_line(err, code, 2, "is not a plain name")
    assert not list(tmp_path.rglob("*EVIL_outside.json"))


# ----- the output folder ------------------------------------------------------------------------------------------

def test_resuming_from_another_runs_checkpoint_never_overwrites_a_finished_folder(trained, tmp_path, capsys):
    other = tiny_lm_run(tmp_path, tmp_path / "other", "--max_steps", 2, "--save_steps", 2)
    finished = tmp_path / "finished"
    shutil.copytree(trained["lm"], finished)
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    code, err = run_example("train", lm_args(tmp_path, finished, "--max_steps", 4, "--resume_from_checkpoint",
                                              other / "checkpoint-2"), capsys)
    assert_one_line(err, code, 2, "is not empty")
    assert {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()} == before


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(out)!r}, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run_example("train", sudoku_args(out), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line(err, code, 2, "is in use by another run")
    assert not any(out.iterdir())


def test_an_unwritable_output_folder_is_found_before_training(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    out = tmp_path / "read_only"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: stand in for a folder that refuses writes
        monkeypatch.setattr("modeling_lstm_trm.training.runs.tempfile.TemporaryFile", refuse)
    else:
        out.chmod(0o555)
    code, err = run_example("train", sudoku_args(out), capsys)
    out.chmod(0o755)
    assert_one_line(err, code, 2, "is not writable (Permission denied)")


def test_overwriting_removes_the_earlier_runs_checkpoints(tmp_path, capsys):
    out = tiny_lm_run(tmp_path, tmp_path / "run", "--max_steps", 4, "--save_steps", 2)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    tiny_lm_run(tmp_path, out, "--max_steps", 1, "--save_strategy", "no", "--overwrite_output_dir", "true")
    assert "removed the earlier run's 2 checkpoint folder(s)" in capsys.readouterr().out
    assert not list(out.glob("checkpoint-*"))  # so `--resume_from_checkpoint true` can never pick one of them
    code, err = run_example("train", lm_args(tmp_path, out, "--resume_from_checkpoint", "true"), capsys)
    assert_one_line(err, code, 2, "holds no checkpoint-N folder")


# ----- evaluation writes files of its own -------------------------------------------------------------------------

def test_evaluation_never_writes_over_the_training_runs_results(trained, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained["sudoku"], model)
    before = (model / "eval_results.json").read_bytes()
    puzzles = tmp_path / "results.txt"
    puzzles.write_text(PUZZLE_4X4 + "\n")
    code, err = run_example("evaluate_model", ["--model", model, "--file", puzzles], capsys)
    assert_one_line(err, code, 2, "holds the training run's own results")
    assert (model / "eval_results.json").read_bytes() == before
    load_example("evaluate_model").main(["--model", str(model), "--file", str(puzzles), "--output_dir",
                                         str(tmp_path / "elsewhere")])
    assert (tmp_path / "elsewhere" / "eval_results.json").is_file()


# ----- runs that end early ----------------------------------------------------------------------------------------

class RaiseAt(TrainerCallback):
    def __init__(self, step: int, error: BaseException | None = None, hook: str = "on_step_end"):
        self.step, self.error = step, error
        setattr(self, hook, self._fire)

    def _fire(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            if self.error is None:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises at once; this never runs out
            raise self.error


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    handler = signal.getsignal(signal.SIGTERM)
    with_callback(monkeypatch, RaiseAt(4))
    out = tmp_path / "run"
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 10, "--save_steps", 100), capsys)
    assert_one_line(err, code, 1, f"terminated (SIGTERM) at step 4: checkpoint saved in {out / 'checkpoint-4'}")
    assert (out / "checkpoint-4" / "carried_state-rank0.safetensors").exists()
    assert signal.getsignal(signal.SIGTERM) == handler  # the run's handler is gone with it


def test_a_failure_mid_run_saves_a_checkpoint_and_a_resume_without_ema_says_so(tmp_path, capsys, monkeypatch):
    with_callback(monkeypatch, RaiseAt(3, RuntimeError("the evaluation broke")))
    out = tmp_path / "run"
    code, err = run_example("train", sudoku_args(out, "--max_steps", 6, "--save_steps", 100), capsys)
    assert_one_line(err, code, 1, f"failed (RuntimeError: the evaluation broke) at step 3: checkpoint saved in "
                                  f"{out / 'checkpoint-3'}; fix the cause, then resume")
    monkeypatch.undo()
    (out / "checkpoint-3" / "ema.safetensors").unlink()
    code, err = run_example("train", sudoku_args(out, "--max_steps", 4, "--save_steps", 100,
                                                  "--resume_from_checkpoint", out / "checkpoint-3"), capsys)
    assert code == 0 and "ema.safetensors is missing" in err


def test_flags_that_would_fail_after_training_are_refused_before_it(tmp_path, capsys):
    new = tmp_path / "new"
    for flags, fragment in ((["--per_device_eval_batch_size", 0], "--per_device_eval_batch_size must be at least 1"),
                            (["--save_steps", 0], "--save_steps must be positive"),
                            (["--max_steps", 0], "--max_steps must be positive")):
        code, err = run_example("train", sudoku_args(new, *flags), capsys)
        assert_one_line(err, code, 2, fragment)
        assert not new.exists() or not any(new.iterdir())


def test_an_interrupt_between_backward_and_the_optimizer_step_resumes_exactly(tmp_path, capsys, monkeypatch):
    """The checkpoint holds the state of the last completed step, not that of the step cut short."""
    same = ("--max_steps", 6, "--lr_scheduler_type", "constant", "--warmup_steps", 0)
    clean = tiny_lm_run(tmp_path, tmp_path / "clean", *same, "--save_steps", 3)
    with_callback(monkeypatch, RaiseAt(3, KeyboardInterrupt(), hook="on_pre_optimizer_step"))
    cut = tmp_path / "cut"
    code, err = run_example("train", lm_args(tmp_path, cut, *same, "--save_steps", 100), capsys)
    assert_one_line(err, code, 1, "interrupted at step 3")
    saved, expected = (load_file(run / "checkpoint-3" / "carried_state-rank0.safetensors") for run in (cut, clean))
    assert saved.keys() == expected.keys()
    assert all(torch.equal(saved[name], expected[name]) for name in saved)
    assert all(torch.equal(a, b) for a, b in zip(load_file(cut / "checkpoint-3" / "model.safetensors").values(),
                                                 load_file(clean / "checkpoint-3" / "model.safetensors").values()))


# ----- bounded effort ---------------------------------------------------------------------------------------------

def test_a_rating_the_generator_cannot_reach_ends_with_what_was_reached():
    with pytest.raises(ValueError, match=r"gave up after 3 candidates per puzzle: 0 of 1 puzzles rated >= 1000000 "
                                         r"\(the highest rating seen: \d+\)"):
        generate_hard_puzzles(1, min_rating=10**6, seed=0, max_candidates_per_puzzle=3)


# ----- round three: overwriting checks first, a checkpoint cut off while saved, signals in every phase ---------------

def test_overwriting_removes_nothing_it_cannot_remove_whole_and_never_follows_a_link(tmp_path, capsys, monkeypatch):
    out = tiny_lm_run(tmp_path, tmp_path / "run", "--max_steps", 2, "--save_steps", 2)
    elsewhere = tmp_path / "someone_elses"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious")
    (out / "checkpoint-9").symlink_to(elsewhere, target_is_directory=True)
    real_access = os.access
    monkeypatch.setattr("modeling_lstm_trm.training.runs.os.access",
                        lambda path, mode: "checkpoint-2" not in str(path) and real_access(path, mode))
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 1, "--overwrite_output_dir", "true"),
                            capsys)
    assert_one_line(err, code, 2, "cannot be emptied (permission denied), so nothing was removed")
    assert (out / "checkpoint-2" / "trainer_state.json").is_file() and (out / "checkpoint-9").is_symlink()
    monkeypatch.undo()
    tiny_lm_run(tmp_path, out, "--max_steps", 1, "--save_strategy", "no", "--overwrite_output_dir", "true")
    assert not list(out.glob("checkpoint-*")) and (elsewhere / "keep.txt").read_text() == "precious"


def test_a_checkpoint_cut_off_while_saved_is_never_resumed_from(tmp_path, capsys):
    out = tiny_lm_run(tmp_path, tmp_path / "run", "--max_steps", 4, "--save_steps", 2)
    (out / "checkpoint-4" / "trainer_state.json").unlink()  # what a kill halfway through the save leaves
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 4, "--resume_from_checkpoint",
                                             out / "checkpoint-4"), capsys)
    assert_one_line(err, code, 2, "checkpoint-4 is an incomplete checkpoint (no trainer_state.json: the run was "
                                  "stopped while saving it)")
    load_example("train").main([str(a) for a in lm_args(tmp_path, out, "--max_steps", 4, "--save_steps", 2,
                                                        "--resume_from_checkpoint", "true")])
    printed = capsys.readouterr().out
    assert "skipping" in printed and "checkpoint-4: an incomplete checkpoint" in printed
    assert "the newest checkpoint is" in printed and "checkpoint-2" in printed


def test_a_second_sigterm_while_the_checkpoint_is_saved_waits_for_it(tmp_path, capsys, monkeypatch):
    """The first SIGTERM saves a checkpoint; a second one during that save must not leave it half written."""
    original = StatefulTrainer._save_rng_state

    def save_rng_and_be_killed_again(self, output_dir):
        os.kill(os.getpid(), signal.SIGTERM)  # the second SIGTERM, halfway through the checkpoint
        return original(self, output_dir)

    monkeypatch.setattr(StatefulTrainer, "_save_rng_state", save_rng_and_be_killed_again)
    with_callback(monkeypatch, RaiseAt(3))
    out = tmp_path / "run"
    code, err = run_example("train", lm_args(tmp_path, out, "--max_steps", 10, "--save_steps", 100), capsys)
    assert_one_line(err, code, 1, f"terminated (SIGTERM) at step 3: checkpoint saved in {out / 'checkpoint-3'}")
    from modeling_lstm_trm.training.safety import incomplete

    assert incomplete(out / "checkpoint-3") is None


def test_a_signal_after_training_says_where_the_model_is(tmp_path, capsys, monkeypatch):
    from modeling_lstm_trm.tasks.text import task as text_task

    out = tmp_path / "run"
    evaluate = StatefulTrainer.evaluate

    def evaluation_killed(self, *args, **kwargs):
        if (out / "model.safetensors").exists():  # the final evaluation, after the final model is saved
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(StatefulTrainer, "evaluate", evaluation_killed)
    argv = lm_args(tmp_path, out, "--max_steps", 2, "--save_strategy", "no", "--eval_strategy", "steps",
                   "--eval_steps", 100)  # the final evaluation only
    code, err = run_example("train", argv, capsys)
    assert_one_line(err, code, 1, f"evaluation terminated (SIGTERM) after training; the trained model is saved in "
                                  f"{out.resolve()}")
    assert (out / "model.safetensors").is_file() and text_task is not None
