"""The Sudoku main job end to end: StatefulTrainer with the LSTM-TRM carry and EMA, examples/train.py's 4x4 preset,
exact resume after SIGKILL, and the solve / evaluate command lines."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import load_example
from safetensors.torch import load_file
from transformers import TrainingArguments

from modeling_lstm_trm import LSTMTRMCarry, LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.tasks.sudoku.puzzles import SudokuDataset, generate_puzzles
from modeling_lstm_trm.training import ExponentialMovingAverage, StatefulTrainer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def tiny_trainer(tmp_path, **kwargs):
    torch.manual_seed(0)
    config = LSTMTRMConfig(vocab_size=5, seq_len=16, puzzle_emb_ndim=8, hidden_size=16, num_layers=1, T_cycles=1,
                           n_cycles=1, halt_max_steps=3, forward_dtype="float32")
    data = generate_puzzles(50, (2, 2), seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=8,
                             dataloader_drop_last=True, report_to="none", save_steps=3, logging_steps=1,
                             disable_tqdm=True, learning_rate=1e-3)
    return StatefulTrainer(model=LSTMTRMForPuzzleSolving(config), args=args, train_dataset=SudokuDataset(data, 48),
                           **kwargs)


def test_the_trainer_carries_a_detached_state_between_steps(tmp_path):
    trainer = tiny_trainer(tmp_path)
    seen = []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("cache")), with_kwargs=True)
    trainer.train()
    assert seen[0] is None  # a fresh state at the start of the epoch
    assert all(isinstance(s, LSTMTRMCarry) and not s.h.requires_grad for s in seen[1:])
    assert [int(s.steps.max()) for s in seen[1:3]] == [1, 2]  # rows continue their puzzles across steps
    saved = load_file(tmp_path / "checkpoint-3" / "carried_state-rank0.safetensors")
    assert set(saved) >= {"h", "c", "steps", "halted", "inputs", "labels"}


def test_resume_restores_the_carried_state(tmp_path):
    trainer = tiny_trainer(tmp_path)
    trainer.train()
    saved = load_file(tmp_path / "checkpoint-3" / "carried_state-rank0.safetensors")
    resumed = tiny_trainer(tmp_path)
    restored = []
    resumed.add_callback(type("Spy", (__import__("transformers").TrainerCallback,), {
        "on_step_begin": lambda self, *a, **k: restored.append(resumed.carried_state["train"])}))
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert torch.equal(restored[0].h, saved["h"]) and torch.equal(restored[0].steps, saved["steps"])


def test_ema_follows_the_weights_with_a_warm_up():
    model = torch.nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, decay=0.999)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # first update: decay min(0.999, 2/11)
    expected = start + (1 - 2 / 11) * 1.0
    torch.testing.assert_close(ema.shadow["weight"], expected)
    with ema.applied(model):
        torch.testing.assert_close(model.weight, expected)
    torch.testing.assert_close(model.weight, start + 1.0)
    restored = ExponentialMovingAverage(model, 0.999)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == 1 and torch.equal(restored.shadow["weight"], ema.shadow["weight"])


def test_puzzle_embeddings_get_their_own_learning_rate_and_weight_decay(tmp_path):
    from modeling_lstm_trm.tasks.lstm_trm_recipe import build_optimizer

    trainer = tiny_trainer(tmp_path)
    model = trainer.model
    trainer.args.weight_decay = 0.1
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    optimizer = build_optimizer(model, trainer.args, puzzle_emb_lr=0.5, puzzle_emb_weight_decay=0.0)
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())  # the model is not changed
    assert not model.model.puzzle_emb.sparse and not hasattr(model, "_ddp_params_and_buffers_to_ignore")
    decay, no_decay, puzzle = optimizer.param_groups
    assert puzzle["lr"] == 0.5 and puzzle["weight_decay"] == 0.0
    assert len(puzzle["params"]) == 1 and puzzle["params"][0] is model.model.puzzle_emb.weight
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    total = sum(len(g["params"]) for g in optimizer.param_groups)
    assert total == sum(1 for p in model.parameters() if p.requires_grad)
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    assert biases and all(any(p is b for p in no_decay["params"]) for b in biases)
    assert not any(p is b for b in biases for p in decay["params"])


# --- examples/train.py ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, preset, hidden_size", [("sudoku", "hard", 64), ("maze", "maze-hard", 512),
                                                       ("arc", "arc-agi-1", 512)])
def test_every_task_takes_its_preset_as_preset_or_recipe(tmp_path, task, preset, hidden_size):
    for split in ("training", "evaluation"):  # the ARC files the arc-agi-1 preset names (only their presence counts)
        for kind in ("challenges", "solutions"):
            (tmp_path / f"arc-agi_{split}_{kind}.json").write_text("{}")
    chosen = []
    for flag in ("--preset", "--recipe"):
        extra = ["--data_dir", str(tmp_path)] if task == "arc" else []
        _, (task_args, model_args), training_args, _ = load_example("train").parse(
            ["--task", task, flag, preset, "--output_dir", str(tmp_path / flag[2:])] + extra)
        chosen.append((getattr(task_args, "preset", None) or task_args.recipe, model_args.hidden_size,
                       training_args.learning_rate))
    assert chosen[0] == chosen[1] and chosen[0][:2] == (preset, hidden_size)
    if task == "maze":  # TRM builds Maze-Hard without augmentation; the other maze recipes turn every maze
        assert task_args.augment is False
        assert load_example("train").parse(["--task", "maze", "--output_dir", str(tmp_path / "cpu")])[1][0].augment


@pytest.fixture(scope="module")
def trained_4x4(tmp_path_factory):
    out = tmp_path_factory.mktemp("sudoku4")
    results = load_example("train").main(["--grid_size", "4", "--output_dir", str(out), "--disable_tqdm", "true"])
    return out, results


def test_the_4x4_preset_solves_held_out_puzzles(trained_4x4):
    out, results = trained_4x4
    held = results["held_out"]
    assert held["puzzles"] >= 400
    assert held["exact_accuracy"] >= 0.9 and held["exact_accuracy_at_q_halt"] >= 0.9, held
    assert 1 <= held["mean_steps"] <= 6


def test_the_trained_cell_keeps_a_solved_answer_solved(trained_4x4):
    """Run to halt_max_steps, the answer of a trained cell does not drift once it is right (TRM's convention scores
    after the last step); the Q head halts well before it."""
    out, _ = trained_4x4
    model = LSTMTRMForPuzzleSolving.from_pretrained(out).eval()
    data = generate_puzzles(512, (2, 2), givens=6, seed=12345)
    puzzles, solutions = (torch.from_numpy(grids.reshape(512, -1)) for grids in (data.puzzles, data.solutions))
    result = model.solve(puzzles, return_trace=True, run_to_max=True)
    assert result.trace.shape == (model.config.halt_max_steps, 512, 16)
    per_step = (result.trace == solutions).all(-1).float().mean(-1)
    assert per_step[-1] >= 0.9 and per_step[-1] >= per_step.max() - 0.01, per_step.tolist()
    assert torch.equal(result.final_predictions, result.trace[-1])
    assert result.halted_at.float().mean() < model.config.halt_max_steps / 2


def test_the_job_writes_a_hub_ready_folder(trained_4x4, without_package):
    out, results = trained_4x4
    for name in ["model.safetensors", "config.json", "configuration_lstm_trm.py", "modeling_lstmtrm.py",
                 "tokenizer.json", "README.md", "eval_results.json", "training_curves.png"]:
        assert (out / name).exists(), name
    assert json.loads((out / "eval_results.json").read_text())["held_out"] == results["held_out"]
    assert "4x4 Sudoku (generated, 6 givens) (" in (out / "README.md").read_text()  # the results table
    printed = without_package(f"""
        import torch
        from transformers import AutoTokenizer
        from transformers.dynamic_module_utils import get_class_from_dynamic_module
        head = get_class_from_dynamic_module("modeling_lstmtrm.LSTMTRMForPuzzleSolving", {str(out)!r})
        model = head.from_pretrained({str(out)!r})
        ids = AutoTokenizer.from_pretrained({str(out)!r})("1.3." + "." * 12, return_tensors="pt")["input_ids"]
        print(model.solve(ids).predictions.shape)
    """)
    assert "torch.Size([1, 16])" in printed


def test_solve_cli_prints_a_valid_solution_and_a_trace(trained_4x4, tmp_path, capsys):
    out, _ = trained_4x4
    from modeling_lstm_trm.tasks.sudoku.puzzles import generate_puzzles as gen
    puzzle = "".join(map(str, gen(1, (2, 2), seed=4242).puzzles[0].reshape(-1))).replace("0", ".")
    reports = load_example("solve").main(["--model", str(out), puzzle, "--trace", "--png", str(tmp_path / "t.png")])
    printed = capsys.readouterr().out
    assert reports[0]["valid"] and "valid and consistent with the givens" in printed
    assert "after supervision step 1" in printed and "halted at step" in printed
    assert (tmp_path / "t.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        load_example("solve").main(["--model", str(out), "12345"])


def test_evaluate_cli_writes_json_and_a_chart_and_ends_with_json(trained_4x4, tmp_path):
    """Run as a user runs it: as a script, whose folder must not shadow the `evaluate` library."""
    out, _ = trained_4x4
    path = tmp_path / "four.txt"
    path.write_text("// two 4x4 puzzles\n1..4.4......3..2\n..3.......1.4...\n")
    run = subprocess.run([sys.executable, str(EXAMPLES / "evaluate_model.py"), "--task", "sudoku", "--model", str(out),
                          "--file", str(path), "--output_dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    last = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"exact_accuracy", "cell_accuracy", "mean_steps", "puzzles"} <= set(last) and last["puzzles"] == 2
    assert (tmp_path / "eval_four.json").exists() and (tmp_path / "eval_four.png").exists()


def test_killed_and_resumed_training_continues_identically(tmp_path, run_train):
    common = ["--grid_size", "4", "--max_steps", "24", "--save_steps", "12", "--logging_steps", "1",
              "--eval_steps", "1000", "--disable_tqdm", "true", "--train_puzzles", "200", "--eval_puzzles", "20"]

    def run(out, kill_at=None, resume=None):
        argv = common + ["--output_dir", str(out)] + (["--resume_from_checkpoint", str(resume)] if resume else [])
        return run_train(argv, kill_at)

    load_example("train").main(common + ["--output_dir", str(tmp_path / "straight")])  # in-process: one import less
    killed = run(tmp_path / "killed", kill_at=17)
    assert killed.returncode == -9 and (tmp_path / "killed" / "checkpoint-12").exists()
    assert not (tmp_path / "killed" / "checkpoint-24").exists()
    resumed = run(tmp_path / "killed", resume=tmp_path / "killed" / "checkpoint-12")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def losses(folder):
        history = json.loads((folder / "checkpoint-24" / "trainer_state.json").read_text())["log_history"]
        return {e["step"]: e["loss"] for e in history if "loss" in e}

    a, b = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    assert set(range(13, 25)) <= set(b)
    for step in range(13, 25):
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])
    final_a, final_b = load_file(tmp_path / "straight" / "model.safetensors"), \
        load_file(tmp_path / "killed" / "model.safetensors")
    for name in final_a:  # the saved (EMA) weights agree too
        torch.testing.assert_close(final_a[name], final_b[name], atol=1e-6, rtol=0)
