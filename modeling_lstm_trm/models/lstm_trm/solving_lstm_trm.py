"""Solving with LSTM-TRM: supervision steps until each row halts, as transformers keeps decoding (`GenerationMixin`)
apart from the modeling file. `LSTMTRMSolvingMixin.solve` runs the steps (the Q head's halt, `max_steps`, or a fixed
point), with noisy test-time trajectories picked by the Q head or a checker; `fixed_point_stop` reads where the
fixed-point rule stops off one deep trace.

A Hub-flat file beside `modeling_lstmtrm.py` (copied with it, loadable as remote code); it imports nothing of its
siblings: the model it is mixed into gives `config`, `_step`, `initial_carry` and `check_inputs`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from transformers.utils import ModelOutput


@dataclass
class LSTMTRMSolveOutput(ModelOutput):
    """Result of [`LSTMTRMForPuzzleSolving.solve`].

    predictions: each row's answer at the step it halted (its Q head said halt, or `max_steps`).
    halted_at: that step (1-based). final_predictions: the answers after the last step run (with `run_to_max`, step
    `max_steps` for every row; otherwise each row's answer where it halted, for a halted row leaves the batch).
    trace: (steps_run, batch, seq_len) every step's answer, with `return_trace=True`; q_halt_trace likewise.
    With several trajectories these are the ones the Q head picked (highest halting logit: `trajectory` for
    `predictions` and the trace, `final_trajectory` for `final_predictions`), and, with an `answer_checker`,
    `checked_predictions` / `checked_final_predictions` are the picks among trajectories whose answer passes it.
    """

    predictions: torch.LongTensor | None = None
    halted_at: torch.LongTensor | None = None
    final_predictions: torch.LongTensor | None = None
    trace: torch.LongTensor | None = None
    q_halt_trace: torch.FloatTensor | None = None
    trajectory: torch.LongTensor | None = None
    final_trajectory: torch.LongTensor | None = None
    checked_predictions: torch.LongTensor | None = None
    checked_final_predictions: torch.LongTensor | None = None


class StepRun(NamedTuple):
    """What the supervision loop of `solve` leaves: answers at each row's halting step, the halting steps, the last
    answers, the trace and Q-halt trace (when kept), and each row's Q-halt logit at its halting step."""

    predictions: torch.Tensor
    halted_at: torch.Tensor
    final: torch.Tensor
    trace: torch.Tensor | None
    q_trace: torch.Tensor | None
    q_at_halt: torch.Tensor


def positive_integer(name: str, value) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be an integer of at least 1, got {value!r}")


class LSTMTRMSolvingMixin:
    """`solve` for `LSTMTRMForPuzzleSolving`."""

    @torch.no_grad()
    def solve(
        self,
        input_ids: torch.LongTensor,
        puzzle_identifiers: torch.LongTensor | None = None,
        max_steps: int | None = None,
        return_trace: bool = False,
        run_to_max: bool = False,
        num_trajectories: int = 1,
        noise_scale: float = 0.0,
        answer_checker=None,
        generator: torch.Generator | None = None,
        fixed_point_steps: int | None = None,
        halt_on_q_head: bool = True,
    ) -> LSTMTRMSolveOutput:
        """Run supervision steps until every row has halted (Q head says halt, or `max_steps`, by default
        `halt_max_steps`). Each row's prediction is its answer at its halting step. `run_to_max=True` keeps going to
        `max_steps` (the trace then shows whether solved answers stay solved). `fixed_point_steps=k` also halts a row
        whose answer has not changed for k steps (a stopping rule that grows with the problem, for thinking longer
        than training did: set `max_steps` high). `halt_on_q_head=False` leaves halting to `max_steps` and the fixed
        point (a Q head trained on small puzzles can halt far too early on larger ones). Without `run_to_max`, a row
        that halted leaves the batch: its answer, also in the trace and `final_predictions`, holds from then on.

        Test-time trajectories: `num_trajectories=K` solves each puzzle K times in one batch, trajectory 0 from the
        initial state and the others from it plus Gaussian noise of std `noise_scale` on h and c, and keeps, per
        puzzle, the trajectory whose Q head is most confident that it halted on a right answer. `answer_checker`
        (a function of (input_ids, answers) -> bool per row, e.g. "a valid grid that keeps the givens") adds a second
        pick, among the trajectories whose answer passes it (the Q head's pick where none does).
        """
        max_steps = self.config.halt_max_steps if max_steps is None else max_steps
        for name, value in (("max_steps", max_steps), ("num_trajectories", num_trajectories),
                            ("fixed_point_steps", 1 if fixed_point_steps is None else fixed_point_steps)):
            positive_integer(name, value)
        if not 0 <= noise_scale < math.inf:
            raise ValueError(f"`noise_scale` must be a finite number >= 0, got {noise_scale}")
        self.check_inputs(input_ids, None, puzzle_identifiers, None)  # once: the steps below skip the checks
        input_ids, k, carry = input_ids.long(), num_trajectories, None
        if k > 1:
            input_ids = input_ids.repeat_interleave(k, 0)
            if puzzle_identifiers is not None:
                puzzle_identifiers = puzzle_identifiers.repeat_interleave(k, 0)
            carry = self.noisy_carry(input_ids, puzzle_identifiers, noise_scale, k, generator)
        was_training = self.training
        self.eval()
        try:
            run = self._run_steps(input_ids, puzzle_identifiers, carry, max_steps, return_trace or k > 1, run_to_max,
                                  fixed_point_steps, halt_on_q_head)
        finally:
            self.train(was_training)
        if k == 1:
            return LSTMTRMSolveOutput(predictions=run.predictions, halted_at=run.halted_at,
                                      final_predictions=run.final, trace=run.trace if return_trace else None,
                                      q_halt_trace=run.q_trace if return_trace else None)
        return self._pick_trajectories(run, input_ids, k, return_trace, answer_checker)

    def noisy_carry(self, input_ids, puzzle_identifiers, noise_scale: float, num_trajectories: int,
                    generator: torch.Generator | None = None):
        """A carry whose rows start on their puzzles from the initial h, c plus noise, except every
        `num_trajectories`-th row (trajectory 0), which starts exactly as `solve` does."""
        carry = self.initial_carry(input_ids, None, puzzle_identifiers)
        shape = carry.h.shape
        clean = (torch.arange(shape[0], device=input_ids.device) % num_trajectories == 0).view(-1, 1, 1)
        noise = [torch.randn(shape, generator=generator, device=input_ids.device) * noise_scale for _ in range(2)]
        return replace(carry, h=torch.where(clean, carry.h, carry.h + noise[0]),
                       c=torch.where(clean, carry.c, carry.c + noise[1]), halted=torch.zeros_like(carry.halted))

    def _pick_trajectories(self, run: StepRun, input_ids, k: int, return_trace: bool, answer_checker):
        """Per puzzle, the trajectory whose Q head is most confident at its halt (and at the last step), and, with a
        checker, the most confident among those whose answer passes it."""
        batch = input_ids.shape[0] // k
        rows = torch.arange(batch, device=input_ids.device)
        confidence, final_confidence = run.q_at_halt.view(batch, k), run.q_trace[-1].view(batch, k)
        pick, final_pick = confidence.argmax(-1), final_confidence.argmax(-1)
        chosen = rows * k + pick
        output = LSTMTRMSolveOutput(
            predictions=run.predictions[chosen], halted_at=run.halted_at[chosen],
            final_predictions=run.final[rows * k + final_pick],
            trace=run.trace[:, chosen] if return_trace else None,
            q_halt_trace=run.q_trace[:, chosen] if return_trace else None, trajectory=pick, final_trajectory=final_pick)
        if answer_checker is not None:
            for name, answers, scores in (("checked_predictions", run.predictions, confidence),
                                          ("checked_final_predictions", run.final, final_confidence)):
                passed = torch.as_tensor(answer_checker(input_ids, answers), device=scores.device).view(batch, k)
                best = torch.where(passed, scores, scores.new_tensor(-torch.inf)).argmax(-1)
                best = torch.where(passed.any(-1), best, scores.argmax(-1))
                setattr(output, name, answers[rows * k + best])
        return output

    def _run_steps(self, input_ids, puzzle_identifiers, carry, max_steps: int, keep_trace: bool, run_to_max: bool,
                   fixed_point_steps: int | None = None, halt_on_q_head: bool = True) -> StepRun:
        """The supervision loop of `solve`. Unless `run_to_max`, a row that halted leaves the batch (the steps after
        cost nothing for it) and its answer and Q logit hold from then on, in the trace too."""
        batch, device = input_ids.shape[0], input_ids.device
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        unchanged = torch.zeros(batch, dtype=torch.long, device=device)  # steps each answer has held
        halted_at = torch.full((batch,), max_steps, dtype=torch.long, device=device)
        running = torch.arange(batch, device=device)  # the rows still in the batch
        running_ids, running_puzzles = input_ids, puzzle_identifiers
        predictions = q_at_halt = answer = q = None
        trace, q_trace = [], []
        for step in range(1, max_steps + 1):
            out = self._step(running_ids, None, running_puzzles, carry)
            previous = answer
            if answer is None:
                answer, q = out.logits.argmax(-1), out.q_halt_logits
                predictions, q_at_halt = answer.clone(), q.clone()
            else:
                answer, q = answer.index_copy(0, running, out.logits.argmax(-1)), q.index_copy(0, running,
                                                                                                out.q_halt_logits)
            now = ~done & (step == max_steps)
            if halt_on_q_head:
                now |= ~done & (q > 0)
            if fixed_point_steps:
                if previous is not None:
                    unchanged = torch.where((answer == previous).all(-1), unchanged + 1, 0)
                now |= ~done & (unchanged >= fixed_point_steps)
            predictions[now], q_at_halt[now], halted_at[now] = answer[now], q[now], step
            done |= now
            if keep_trace:
                trace.append(answer)
                q_trace.append(q)
            if done.all() and not run_to_max:
                break
            carry = replace(out.cache, halted=torch.zeros_like(running, dtype=torch.bool))  # keep every row going
            if not run_to_max and done[running].any():
                stay = (~done[running]).nonzero().squeeze(-1)
                running, carry = running[stay], carry.batch_select_indices(stay)
                running_ids = input_ids[running]
                running_puzzles = None if puzzle_identifiers is None else puzzle_identifiers[running]
        return StepRun(predictions, halted_at, answer, torch.stack(trace) if keep_trace else None,
                       torch.stack(q_trace) if keep_trace else None, q_at_halt)


def fixed_point_stop(trace: torch.Tensor, q_halt_trace: torch.Tensor | None, fixed_point_steps: int):
    """Where `solve(..., fixed_point_steps=k)` would have stopped each row, read off a trace that ran on
    (`solve(..., return_trace=True, run_to_max=True)`): the first step whose answer has held for k steps or whose Q
    head halts (`q_halt_trace=None`: the Q head not asked, as `halt_on_q_head=False`), else the last. Returns the
    answers there and the (1-based) steps, so one deep run scores several k."""
    positive_integer("fixed_point_steps", fixed_point_steps)  # the steps an answer must hold
    steps, batch = trace.shape[:2]
    held = torch.zeros(batch, dtype=torch.long, device=trace.device)
    stop = torch.full((batch,), steps, dtype=torch.long, device=trace.device)
    for step in range(steps):
        if step:
            held = torch.where((trace[step] == trace[step - 1]).all(-1), held + 1, 0)
        halts = held >= fixed_point_steps
        if q_halt_trace is not None:
            halts |= q_halt_trace[step] > 0
        now = (stop == steps) & halts
        stop = torch.where(now, step + 1, stop)
    return trace[stop - 1, torch.arange(batch, device=trace.device)], stop


__all__ = ["LSTMTRMSolveOutput", "LSTMTRMSolvingMixin", "fixed_point_stop"]
