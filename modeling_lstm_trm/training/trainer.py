"""StatefulTrainer: a Transformers `Trainer` that carries a model's recurrent state from one step to the next.

The state is anything that satisfies the `CarriedState` protocol (`carried_state.py`): the nested LM's
`NestedLSTMState` across chunks of a stream, LSTM-TRM's `LSTMTRMCarry` across deep-supervision steps. The trainer
passes it in as `cache` (transformers' name for a carried state), keeps the one that comes out, detached (truncated
backpropagation), starts afresh at every epoch and every evaluation, and saves it in every checkpoint so that
`resume_from_checkpoint` continues exactly. It also keeps an optional EMA of the weights, evaluates on it and saves
it as the final model.

Metrics: a model may return `outputs.metrics = {name: (sum, count)}`; the trainer adds the pairs up over the
logging window (and over processes) and logs `train_<name>` = sum / count, and likewise `eval_<name>` in the
evaluation loop. A task adds metrics without touching the trainer.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .ema import ExponentialMovingAverage
from .safety import DivergenceGuard, RunError

STATE_FILE = "carried_state-rank{rank}.safetensors"
EMA_FILE = "ema.safetensors"


class MetricSums:
    """Running (sum, count) of each metric a model returns; `pop_averages` gives sum / count and starts over."""

    def __init__(self):
        self.totals: dict[str, torch.Tensor] = {}

    def add(self, metrics: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for name, (total, count) in metrics.items():
            pair = torch.stack([torch.as_tensor(total).detach().double().cpu(),
                                torch.as_tensor(count).detach().double().cpu()])
            self.totals[name] = self.totals[name] + pair if name in self.totals else pair

    def pop_averages(self, prefix: str, reduce: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        names = sorted(self.totals)  # every process returns the same names, so the reduction lines up
        if not names:
            return {}
        totals = reduce(torch.stack([self.totals[name] for name in names]))
        self.totals = {}
        return {f"{prefix}_{name}": round(float(total / count), 4) for name, (total, count) in zip(names, totals)
                if count > 0}


class StatefulTrainer(Trainer):
    """A `Trainer` for models with a carried state.

    Args (beyond `Trainer`'s):
        ema_decay: keep an exponential moving average of the weights with this decay; evaluation runs on it and the
            final `save_model` writes it (checkpoints keep the raw weights plus `ema.safetensors`, for exact resume).
        evaluate_fn: `fn(model, eval_dataset) -> dict of floats`, the task's own evaluation in place of the loss loop
            (solving puzzles, reading a text as streams); called in eval mode on the EMA weights when there are some.
        carry_state: False starts every batch from a fresh state (an ablation: what carrying the state is worth).
        lr_schedule: `fn(optimizer) -> scheduler` in place of `--lr_scheduler_type`'s, built on the optimizer given or
            the one Trainer builds (a schedule over a time budget, `TimeBudget.cosine_schedule`).
    """

    def __init__(self, *args, ema_decay: float | None = None,
                 evaluate_fn: Callable[[torch.nn.Module, object], dict[str, float]] | None = None,
                 carry_state: bool = True, lr_schedule: Callable | None = None, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        use_cache = getattr(getattr(model, "config", None), "use_cache", None)
        super().__init__(*args, **kwargs)
        if use_cache is not None:  # Trainer sets config.use_cache = args.use_cache (False); the saved config keeps ours
            self.model.config.use_cache = use_cache
        # The carried state is the point of this trainer: ask for it even where the config says not to.
        accepts_use_cache = "use_cache" in inspect.signature(self.model.forward).parameters
        self._state_kwargs = {"use_cache": True} if accepts_use_cache else {}
        self.carried_state = {"train": None, "eval": None}
        # The training state as of the last completed optimizer step: what a checkpoint saves, so that one saved
        # in the middle of a step (Ctrl-C, SIGTERM, a failure) resumes exactly.
        self.step_state = None
        self.metric_sums = {"train": MetricSums(), "eval": MetricSums()}
        self.evaluate_fn, self.carry_state, self.lr_schedule = evaluate_fn, carry_state, lr_schedule
        self.ema = ExponentialMovingAverage(self.model, ema_decay) if ema_decay else None
        self._restored_state = False
        self.add_callback(_StateCallback(self))
        self.add_callback(DivergenceGuard())

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None and self.lr_schedule is not None:
            self.lr_scheduler = self.lr_schedule(self.optimizer if optimizer is None else optimizer)
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)

    def reset_state(self, mode: str = "train") -> None:
        self.carried_state[mode] = None
        if mode == "train":
            self.step_state = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        inputs = {**inputs, **self._state_kwargs, "cache": self.carried_state[mode]}
        # Trainer's own loss handling (num_items_in_batch, scaling across processes), with the state passed in.
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        state = outputs.get("cache")
        self.carried_state[mode] = state.detach() if state is not None and self.carry_state else None
        if outputs.get("metrics"):
            self.metric_sums[mode].add(outputs["metrics"])
        return (loss, outputs) if return_outputs else loss

    def _sum_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.reduce(tensor.to(self.args.device), reduction="sum").cpu()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: the metrics of the steps since the last one
            logs.update(self.metric_sums["train"].pop_averages("train", self._sum_over_processes))
        super().log(logs, start_time)

    # ----- evaluation -------------------------------------------------------------------------------------------

    def ema_weights(self):
        """Context manager yielding the unwrapped model with the EMA weights in it (the raw weights without EMA)."""
        model = self.accelerator.unwrap_model(self.model)
        return self.ema.applied(model) if self.ema is not None else contextlib.nullcontext(model)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        output.metrics.update(self.metric_sums["eval"].pop_averages(metric_key_prefix, self._sum_over_processes))
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        self.reset_state("eval")
        with self.ema_weights() as model:
            if self.evaluate_fn is None:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            was_training = model.training
            model.eval()
            try:
                scores = self.evaluate_fn(model, self.eval_dataset if eval_dataset is None else eval_dataset)
            finally:
                model.train(was_training)
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in scores.items()}
        metrics["epoch"] = self.state.epoch
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ----- saving and resuming ----------------------------------------------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints keep the raw weights; the final model is the EMA one (when EMA is on)."""
        if self.ema is None or _internal_call:
            return super().save_model(output_dir, _internal_call)
        with self.ema_weights():
            return super().save_model(output_dir, _internal_call)

    def _save_checkpoint(self, model, trial):
        """The carried state and the EMA first, then Trainer's files, whose last (`trainer_state.json`) marks the
        checkpoint whole (`safety.incomplete`)."""
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        os.makedirs(folder, exist_ok=True)
        state = self.step_state
        if state is not None:
            save_file(state.to_tensors(), os.path.join(folder, STATE_FILE.format(rank=self.args.process_index)),
                      metadata={"class": type(state).__name__})
        if self.ema is not None and self.args.should_save:
            save_file(self.ema.state_dict(), os.path.join(folder, EMA_FILE))
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, STATE_FILE.format(rank=self.args.process_index))
        if os.path.exists(path):
            state_class = self.accelerator.unwrap_model(self.model).state_class
            self.carried_state["train"] = state_class.from_tensors(load_file(path, device=str(self.args.device)))
            self.step_state = self.carried_state["train"]
            self._restored_state = True
        elif self.carry_state:
            raise RunError(f"{path} is missing: the checkpoint has no carried state for process "
                           f"{self.args.process_index} (saved with another number of processes, or the file was "
                           "removed), so the run cannot continue exactly; resume from another checkpoint")
        ema_path = os.path.join(resume_from_checkpoint, EMA_FILE)
        if self.ema is not None and os.path.exists(ema_path):
            self.ema.load_state_dict(load_file(ema_path, device=str(self.args.device)))
        elif self.ema is not None and self.args.should_save:
            print(f"notice: {ema_path} is missing: the weights' moving average starts again from the checkpoint's "
                  "weights, so the final model will differ from an uninterrupted run's", file=sys.stderr, flush=True)


class _StateCallback(TrainerCallback):
    """A fresh training state at every epoch (unless a checkpoint just gave one back); the EMA after every step."""

    def __init__(self, trainer: StatefulTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer._restored_state:  # resuming mid-epoch: keep the state the checkpoint gave back
            self.trainer._restored_state = False
        else:
            self.trainer.reset_state("train")

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.step_state = self.trainer.carried_state["train"]
        if self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.accelerator.unwrap_model(self.trainer.model))
