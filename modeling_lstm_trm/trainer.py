"""StatefulTrainer: a Transformers Trainer that carries a model's recurrent state from one step to the next.

Both models of this package expose their state like a KV cache (`past_key_values` in, `outputs.past_key_values`
out): the nested LM's `NestedLSTMState` across chunks of a stream, LSTM-TRM's `LSTMTRMCarry` across deep-supervision
steps. The trainer keeps one state for training and one for evaluation, detaches it after every step (truncated
backpropagation), resets it at the start of every epoch and every evaluation, and saves it in every checkpoint so
that `resume_from_checkpoint` continues exactly. It never looks inside the state: the state classes say how to
detach, save and load themselves (`detach`, `to_tensors`, `from_tensors`).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .streams import language_model_metrics

STATE_FILE = "carried_state-rank{rank}.safetensors"
EMA_FILE = "ema.safetensors"
# Metrics that are means over the halted rows of a batch: averaged by row count, the others by batch.
PER_ROW_METRICS = ("cell_accuracy", "exact_accuracy", "q_halt_accuracy", "steps")


class ExponentialMovingAverage:
    """EMA of a model's trainable parameters (TRM evaluates and ships the EMA weights).

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so that a short run's average is not
    dominated by the initial weights (0.999 over 700 steps would still be half initialization).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach(), 1.0 - decay)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """Temporarily put the EMA weights into the model."""
        params = dict(model.named_parameters())
        backup = {name: params[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, value in self.shadow.items():
                params[name].copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in backup.items():
                    params[name].copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**{name: t.contiguous() for name, t in self.shadow.items()}, "__updates__": torch.tensor(self.updates)}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        tensors = dict(tensors)
        self.updates = int(tensors.pop("__updates__", torch.tensor(0)))
        for name, value in tensors.items():
            self.shadow[name].copy_(value)


class _StateCallback(TrainerCallback):
    def __init__(self, trainer: StatefulTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.trainer._restored_state:  # resuming mid-epoch: keep the state the checkpoint gave back
            self.trainer._restored_state = False
        else:
            self.trainer.reset_state("train")

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.accelerator.unwrap_model(self.trainer.model))


class StatefulTrainer(Trainer):
    """A `Trainer` for models with carried state.

    Args (beyond `Trainer`'s):
        ema_decay: keep an exponential moving average of the weights with this decay; evaluation runs on it and the
            final `save_model` writes it (checkpoints keep the raw weights plus `ema.safetensors`, for exact resume).
        evaluate_fn: `fn(model, eval_dataset) -> dict of floats` replacing the loss-based evaluation loop (LSTM-TRM
            evaluates by solving puzzles); called on the EMA weights when there are some.
        param_group_overrides: `{name_prefix: {"lr": ..., "weight_decay": ...}}` to give some parameters (the
            puzzle embeddings) their own learning rate and weight decay.
        carry_state: False starts every batch from a fresh state, in training and evaluation (an ablation: what
            carrying the state is worth).
    """

    def __init__(
        self,
        *args,
        ema_decay: float | None = None,
        evaluate_fn: Callable[[torch.nn.Module, object], dict[str, float]] | None = None,
        param_group_overrides: dict[str, dict[str, float]] | None = None,
        carry_state: bool = True,
        **kwargs,
    ):
        model = kwargs.get("model", args[0] if args else None)
        use_cache = getattr(getattr(model, "config", None), "use_cache", None)
        super().__init__(*args, **kwargs)
        if use_cache is not None:  # Trainer sets config.use_cache = args.use_cache (False); the saved config keeps ours
            self.model.config.use_cache = use_cache
        # The carried state is the point of this trainer: ask for it even where the config says not to.
        self._state_kwargs = {"use_cache": True} if "use_cache" in inspect.signature(self.model.forward).parameters \
            else {}
        self.carried_state = {"train": None, "eval": None}
        self._restored_state = False
        self.evaluate_fn = evaluate_fn
        self.carry_state = carry_state
        self.param_group_overrides = param_group_overrides or {}
        self.ema = ExponentialMovingAverage(self.model, ema_decay) if ema_decay else None
        self._train_metrics: dict[str, float] = {}
        self._train_metric_count = 0.0
        self.add_callback(_StateCallback(self))

    # ----- the carried state ----------------------------------------------------------------------------------------

    def reset_state(self, mode: str = "train") -> None:
        self.carried_state[mode] = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        inputs = {**inputs, **self._state_kwargs,
                  "past_key_values": self.carried_state[mode] if self.carry_state else None}
        surprise_optimizer = self._surprise_optimizer() if mode == "train" else None
        if surprise_optimizer is not None:
            inputs["compute_surprise"] = True
        # Trainer's own loss handling (num_items_in_batch, scaling across processes), with the state passed in.
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        state = outputs.get("past_key_values")
        self.carried_state[mode] = state.detach() if state is not None else None
        if surprise_optimizer is not None:
            self._observe_surprise(surprise_optimizer, outputs["surprise"], inputs)
        if mode == "train" and outputs.get("metrics") is not None:
            self._accumulate(outputs["metrics"])
        return (loss, outputs) if return_outputs else loss

    def _surprise_optimizer(self):
        """The `MultiTimescaleOptimizer` inside accelerate's wrapper, when it weights by surprise."""
        optimizer = self.optimizer
        while optimizer is not None and not hasattr(optimizer, "observe_surprise"):
            optimizer = getattr(optimizer, "optimizer", None)
        return optimizer if optimizer is not None and optimizer.surprise_weighting else None

    def _observe_surprise(self, optimizer, token_nll: torch.Tensor, inputs: dict) -> None:
        """Summed NLL and target count of this micro-batch, summed over processes so that every process computes the
        same weight (their gradients are already averaged; different weights would make the replicas drift)."""
        targets = inputs.get("shift_labels")
        if targets is None:
            targets = inputs["labels"][:, 1:]
        totals = torch.stack([token_nll.sum().float(), (targets != -100).sum().float()])
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        optimizer.observe_surprise(*totals.tolist())

    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        count = float(metrics.get("count", 1.0))
        for name, value in metrics.items():
            if name != "count":
                weight = count if name in PER_ROW_METRICS else 1.0
                self._train_metrics[name] = self._train_metrics.get(name, 0.0) + float(value) * weight
        self._train_metrics["_batches"] = self._train_metrics.get("_batches", 0.0) + 1.0
        self._train_metric_count += count

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._train_metrics:
            batches = self._train_metrics.pop("_batches")
            for name, total in self._train_metrics.items():
                per_row = name in PER_ROW_METRICS
                denominator = self._train_metric_count if per_row else batches
                if denominator > 0:
                    logs[f"train_{name}"] = round(total / denominator, 4)
            self._train_metrics, self._train_metric_count = {}, 0.0
        super().log(logs, start_time)

    # ----- evaluation -------------------------------------------------------------------------------------------

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """Language-model metrics from the mean loss over the whole stream: perplexity, bits per token, and bits per
        character when the dataset knows its `characters_per_token`."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        loss = output.metrics.get(f"{metric_key_prefix}_loss")
        if loss is not None and self.evaluate_fn is None:
            chars_per_token = getattr(dataloader.dataset, "characters_per_token", None)
            for name, value in language_model_metrics(loss, chars_per_token).items():
                output.metrics[f"{metric_key_prefix}_{name}"] = value
        return output

    def ema_weights(self):
        """Context manager yielding the unwrapped model with the EMA weights in it (the raw weights without EMA)."""
        model = self.accelerator.unwrap_model(self.model)
        return self.ema.applied(model) if self.ema is not None else contextlib.nullcontext(model)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        self.reset_state("eval")
        try:
            with self.ema_weights() as model:
                if self.evaluate_fn is None:
                    return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
                was_training = model.training
                model.eval()
                dataset = self.eval_dataset if eval_dataset is None else eval_dataset
                metrics = {f"{metric_key_prefix}_{k}": v for k, v in self.evaluate_fn(model, dataset).items()}
                model.train(was_training)
                metrics["epoch"] = self.state.epoch
                self.log(metrics)
                self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
                return metrics
        finally:
            self.reset_state("eval")

    # ----- optimizer --------------------------------------------------------------------------------------------

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if not self.param_group_overrides:
            return optimizer
        names = {id(p): n for n, p in self.accelerator.unwrap_model(self.model).named_parameters()}
        for prefix, settings in self.param_group_overrides.items():
            moved = []
            for group in optimizer.param_groups:
                keep = [p for p in group["params"] if not names.get(id(p), "").startswith(prefix)]
                moved += [p for p in group["params"] if names.get(id(p), "").startswith(prefix)]
                group["params"] = keep
            if moved:
                optimizer.add_param_group({**optimizer.defaults, **settings, "params": moved})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    # ----- saving and resuming ----------------------------------------------------------------------------------

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints keep the raw weights; the final model is the EMA one (when EMA is on)."""
        if self.ema is None or _internal_call:
            return super().save_model(output_dir, _internal_call)
        with self.ema_weights():
            return super().save_model(output_dir, _internal_call)

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        os.makedirs(folder, exist_ok=True)
        state = self.carried_state["train"]
        if state is not None:
            rank = self.args.process_index
            save_file(state.to_tensors(), os.path.join(folder, STATE_FILE.format(rank=rank)),
                      metadata={"class": type(state).__name__})
        if self.ema is not None and self.args.should_save:
            save_file(self.ema.state_dict(), os.path.join(folder, EMA_FILE))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, STATE_FILE.format(rank=self.args.process_index))
        if os.path.exists(path):
            state_class = self.accelerator.unwrap_model(self.model).state_class
            self.carried_state["train"] = state_class.from_tensors(load_file(path, device=str(self.args.device)))
            self._restored_state = True
        ema_path = os.path.join(resume_from_checkpoint, EMA_FILE)
        if self.ema is not None and os.path.exists(ema_path):
            self.ema.load_state_dict(load_file(ema_path, device=str(self.args.device)))
