"""Specification of the training mechanism every task shares: the carried-state protocol, StatefulTrainer with a
task it has never seen (its own state, its own summed metrics), and the wall-clock budget's progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback, TrainingArguments

from modeling_lstm_trm import (
    CarriedState,
    LSTMTRMCarry,
    LSTMTRMConfig,
    LSTMTRMForPuzzleSolving,
    NestedLSTMConfig,
    NestedLSTMForCausalLM,
    StatefulTrainer,
)
from modeling_lstm_trm.training.runs import TimeBudget, procedure

pytestmark = pytest.mark.floor  # also run on the oldest supported versions

# --- the protocol ------------------------------------------------------------------------------------------------


def nested_state():
    model = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=11, hidden_size=8, num_lstm_layers=2))
    return model(torch.randint(0, 11, (3, 5))).cache


def trm_carry():
    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(vocab_size=5, seq_len=16, hidden_size=16, num_layers=1, T_cycles=1,
                                       n_cycles=1, halt_max_steps=4, forward_dtype="float32"))
    return model(torch.randint(0, 5, (3, 16)), labels=torch.randint(1, 5, (3, 16))).cache


@pytest.mark.parametrize("make", [nested_state, trm_carry], ids=["NestedLSTMState", "LSTMTRMCarry"])
def test_both_states_satisfy_the_protocol(make):
    state = make()
    assert isinstance(state, CarriedState) and state.batch_size == 3
    detached = state.detach()
    assert all(not t.requires_grad for t in detached.to_tensors().values())
    restored = type(state).from_tensors(state.to_tensors())
    assert restored.to_tensors().keys() == state.to_tensors().keys()
    assert all(torch.equal(a, b) for a, b in zip(restored.to_tensors().values(), state.to_tensors().values()))
    moved = state.to("cpu")
    assert all(torch.equal(a, b) for a, b in zip(moved.to_tensors().values(), state.to_tensors().values()))


def test_resetting_rows_of_the_nested_state_zeroes_them_and_keeps_the_others():
    state = nested_state()
    before = state.h.clone()
    state.reset(torch.tensor([False, True, False]))
    assert state.h[:, 1].abs().sum() == 0 and state.c[:, 1].abs().sum() == 0
    assert torch.equal(state.h[:, [0, 2]], before[:, [0, 2]])
    state.reset([2])
    assert state.h[:, 2].abs().sum() == 0 and torch.equal(state.h[:, 0], before[:, 0])


def test_a_reset_trm_row_restarts_on_the_next_puzzle_exactly_as_a_fresh_one():
    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(vocab_size=5, seq_len=16, hidden_size=16, num_layers=1, T_cycles=1,
                                       n_cycles=1, halt_max_steps=8, forward_dtype="float32")).eval()
    old, new = torch.randint(0, 5, (3, 16)), torch.randint(0, 5, (3, 16))
    carry = model(old).cache
    assert not carry.halted.any()
    carry.reset(torch.tensor([False, True, False])).reset([2])
    assert carry.halted.tolist() == [False, True, True]
    out, fresh = model(new, cache=carry), model(new)
    torch.testing.assert_close(out.logits[1:], fresh.logits[1:], atol=1e-6, rtol=0)
    assert out.cache.steps.tolist() == [2, 1, 1]
    assert torch.equal(out.cache.inputs[0], old[0])  # row 0 kept its own puzzle


def test_refill_restarts_only_halted_rows():
    carry = LSTMTRMCarry(h=torch.ones(2, 3, 4), c=torch.ones(2, 3, 4), steps=torch.tensor([5, 7]),
                         halted=torch.tensor([True, False]), inputs=torch.zeros(2, 3, dtype=torch.long),
                         labels=torch.zeros(2, 3, dtype=torch.long))
    refilled = carry.refill(torch.full((4,), -1.0), torch.full((4,), -2.0), torch.ones(2, 3, dtype=torch.long),
                            labels=torch.full((2, 3), 2))
    assert refilled.h[0].eq(-1).all() and refilled.c[0].eq(-2).all() and refilled.h[1].eq(1).all()
    assert refilled.steps.tolist() == [0, 7] and not refilled.halted.any()
    assert refilled.inputs[:, 0].tolist() == [1, 0] and refilled.labels[:, 0].tolist() == [2, 0]


# --- a toy task the trainer has never seen -------------------------------------------------------------------------


@dataclass
class RunningTotal:
    """A toy carried state: each row's running sum of everything it has read."""

    total: torch.Tensor  # (batch, 1)

    @property
    def batch_size(self) -> int:
        return self.total.shape[0]

    def detach(self) -> RunningTotal:
        return RunningTotal(self.total.detach())

    def reset(self, rows) -> RunningTotal:
        self.total = self.total.index_fill(0, torch.as_tensor(rows).reshape(-1), 0.0)
        return self

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"total": self.total.contiguous()}

    @classmethod
    def from_tensors(cls, tensors) -> RunningTotal:
        return cls(tensors["total"])

    def to(self, device) -> RunningTotal:
        return RunningTotal(self.total.to(device))


class RunningTotalModel(torch.nn.Module):
    """Predicts the running total of a stream from its carried total; reports its own metric as (sum, count)."""

    state_class = RunningTotal

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, x, labels, cache=None):
        previous = cache.total if cache is not None else torch.zeros(len(x), 1)
        total = previous + x.sum(-1, keepdim=True)
        error = (self.scale * 2 * total - labels).abs()
        return {"loss": error.square().mean(), "cache": RunningTotal(total),
                "metrics": {"absolute_error": (error.detach().sum(), torch.tensor(float(len(x))))}}


class Stream(torch.utils.data.Dataset):
    """Two streams of ones, time-major: row r of batch k holds chunk k of stream r; the label is the running total."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        chunk = i // 2
        return {"x": torch.ones(3), "labels": torch.tensor([3.0 * (chunk + 1)])}


def toy_trainer(tmp_path, lr_schedule=None, **overrides):
    settings = dict(max_steps=6, per_device_train_batch_size=2, per_device_eval_batch_size=2, logging_steps=3,
                    train_sampling_strategy="sequential", learning_rate=0.01, report_to="none", disable_tqdm=True,
                    save_steps=3, use_cpu=True)
    args = TrainingArguments(output_dir=str(tmp_path), **{**settings, **overrides})
    return StatefulTrainer(model=RunningTotalModel(), args=args, train_dataset=Stream(), eval_dataset=Stream(),
                           lr_schedule=lr_schedule)


def test_a_new_task_trains_with_its_own_state_and_metrics_without_changing_the_trainer(tmp_path):
    trainer = toy_trainer(tmp_path)
    seen, errors = [], []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["cache"]), with_kwargs=True)
    trainer.model.register_forward_hook(
        lambda module, args, output: errors.append(output["metrics"]["absolute_error"][0].item()))
    trainer.train()
    assert seen[0] is None  # a fresh state at the start of the epoch
    assert [s.total[:, 0].tolist() for s in seen[1:4]] == [[3.0, 3.0], [6.0, 6.0], [9.0, 9.0]]
    assert all(not s.total.requires_grad for s in seen[1:])
    logs = [entry for entry in trainer.state.log_history if "train_absolute_error" in entry]
    assert [entry["step"] for entry in logs] == [3, 6]
    assert logs[0]["train_absolute_error"] == pytest.approx(sum(errors[:3]) / 6, abs=1e-4)  # sum / count
    assert logs[1]["train_absolute_error"] == pytest.approx(sum(errors[3:6]) / 6, abs=1e-4)
    saved = load_file(tmp_path / "checkpoint-3" / "carried_state-rank0.safetensors")
    assert saved["total"][:, 0].tolist() == [9.0, 9.0]

    metrics = trainer.evaluate()  # the loss loop, with its own state from zero, and the summed metric
    assert "eval_absolute_error" in metrics and trainer.evaluate()["eval_loss"] == pytest.approx(metrics["eval_loss"])

    resumed = toy_trainer(tmp_path)
    first = []
    resumed.model.register_forward_pre_hook(
        lambda module, args, kwargs: first.append(kwargs["cache"]), with_kwargs=True)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert first[0].total[:, 0].tolist() == [9.0, 9.0]  # the checkpoint's state, not a fresh one


def test_carry_state_false_starts_every_batch_fresh(tmp_path):
    trainer = toy_trainer(tmp_path)
    trainer.carry_state = False
    seen = []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["cache"]), with_kwargs=True)
    trainer.train()
    assert seen == [None] * 6


# --- the wall-clock budget ---------------------------------------------------------------------------------------


def test_a_time_budget_stops_training_and_its_progress_bar_counts_seconds(tmp_path):
    trainer = toy_trainer(tmp_path, max_steps=10_000, save_strategy="no", disable_tqdm=False)

    class Slow(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(0.05)

    trainer.add_callback(Slow())
    budget = TimeBudget(minutes=1 / 60).install(trainer)
    bars = []
    original = budget.on_train_begin

    def record(*args, **kwargs):
        original(*args, **kwargs)
        bars.append(budget.training_bar)

    budget.on_train_begin = record
    start = time.monotonic()
    trainer.train()
    assert time.monotonic() - start < 5 and trainer.state.global_step < 10_000
    assert bars[0].total == 1 and bars[0].unit == "s"  # the bar's length is the budget, not max_steps
    assert sum(isinstance(cb, TimeBudget) for cb in trainer.callback_handler.callbacks) == 1


def test_a_schedule_over_the_time_budget_warms_up_by_steps_then_decays_to_zero_by_the_clock(tmp_path):
    """`--schedule_by_time`: the learning rate of Trainer's own optimizer follows the minutes, not --max_steps."""
    budget = TimeBudget(minutes=1 / 60)
    trainer = toy_trainer(tmp_path, lr_schedule=lambda optimizer: budget.cosine_schedule(optimizer, warmup_steps=4),
                          max_steps=10_000, save_strategy="no", logging_steps=1)
    budget.install(trainer)

    class Slow(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(0.02)

    trainer.add_callback(Slow())
    trainer.train()
    rates = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert trainer.state.global_step < 10_000  # stopped by the clock, long before the steps' schedule would end
    assert rates[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01], rel=0.05)  # a linear warm-up over 4 steps
    assert max(rates) <= 0.01 and rates[-1] < 0.001  # near zero when the minute is spent
    assert all(later <= earlier + 1e-12 for earlier, later in zip(rates[3:], rates[4:]))
    assert procedure(trainer, {})["lr_scheduler"] == "cosine over the time budget"  # as training_run.json says

