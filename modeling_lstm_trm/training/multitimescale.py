"""MultiTimescaleOptimizer: each level of a nested model updates its parameters on its own clock.

Level k's parameters take an inner-optimizer step only on optimizer steps that are multiples of its period
(`level_update_every[k]`), using the mean of the gradients accumulated since its last step. Level 1 (period 1)
is an ordinary optimizer. Between its steps a slow level's parameters do not change at all: not from the update,
not from weight decay, not from the optimizer's moments (its parameters simply have no gradient on those steps).

With surprise weighting on, each step's contribution to a slow level's accumulator is multiplied by
w = clamp(surprise / running_mean_surprise, w_min, w_max), where surprise is the step's mean negative
log-likelihood per token over its micro-batches and processes (`watch(model)` reads it from the model's training
forward passes; or report it with `observe_surprise` before `step`) and the running mean is an exponential average
of past surprises; the accumulated gradient is then divided by the sum of the weights, so a slow level learns more
from the batches that surprised the model. With surprise gating, w is 1 for a step more surprising than the running
mean and 0 otherwise: a slow level whose whole period was unsurprising does not step at all.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


class MultiTimescaleOptimizer(torch.optim.Optimizer):
    """Wraps any torch optimizer built over one parameter group per level.

    Args:
        optimizer: the inner optimizer; its param_groups[k] holds level k's parameters.
        periods: update period of each level, in optimizer steps (`config.level_update_every`).
        surprise_weighting: weight slow levels' accumulated gradients by batch surprise (see module docstring).
        surprise_bounds: (w_min, w_max) of those weights.
        surprise_momentum: decay of the running mean of surprise.
        surprise_gate: weights are 1 above the running mean of surprise and 0 below (implies surprise weighting).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, periods: list[int], surprise_weighting: bool = False,
                 surprise_bounds: tuple[float, float] = (0.5, 2.0), surprise_momentum: float = 0.99,
                 surprise_gate: bool = False):
        if len(periods) != len(optimizer.param_groups):
            raise ValueError(f"{len(periods)} periods for {len(optimizer.param_groups)} parameter groups")
        if any(int(p) != p or p < 1 for p in periods):
            raise ValueError(f"periods must be positive integers, got {periods}")
        self.optimizer = optimizer
        self.periods = [int(p) for p in periods]
        self.surprise_weighting = surprise_weighting or surprise_gate
        self.surprise_gate = surprise_gate
        self.surprise_bounds = surprise_bounds
        self.surprise_momentum = surprise_momentum
        self.step_count = 0
        self.accumulated: dict[int, torch.Tensor] = {}  # id(param) -> summed (weighted) gradient
        self.weight_sums = [0.0] * len(periods)
        self.running_surprise: float | None = None
        self.pending_surprise = [0.0, 0.0]  # summed NLL and token count observed since the last step
        self.last_surprise_weight = 1.0
        self.defaults = optimizer.defaults
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}
        for group, period in zip(self.optimizer.param_groups, self.periods):
            group["update_every"] = period

    @classmethod
    def from_model(cls, model, optimizer_class=torch.optim.AdamW, level_lr_scale: list[float] | None = None,
                   surprise_weighting: bool | None = None, watch_surprise: bool = True,
                   **optimizer_kwargs) -> MultiTimescaleOptimizer:
        """One group per level from `model.level_parameters()`, periods from `model.config.level_update_every`.
        `level_lr_scale` multiplies the learning rate of each level (default 1 for all). With surprise weighting
        (default: `model.config.surprise_weighting`) the optimizer `watch`es the model, unless `watch_surprise=False`
        (then report each micro-batch's surprise yourself with `observe_surprise`)."""
        levels = model.level_parameters()
        periods = list(model.config.level_update_every)
        scales = level_lr_scale or [1.0] * len(levels)
        if len(scales) != len(levels):
            raise ValueError(f"level_lr_scale has {len(scales)} entries for {len(levels)} levels")
        base_lr = optimizer_kwargs.pop("lr", 1e-3)
        groups = [{"params": [p for p in params if p.requires_grad], "lr": base_lr * scale}
                  for params, scale in zip(levels, scales)]
        if surprise_weighting is None:
            surprise_weighting = bool(getattr(model.config, "surprise_weighting", False))
        optimizer = cls(optimizer_class(groups, lr=base_lr, **optimizer_kwargs), periods, surprise_weighting)
        if surprise_weighting and watch_surprise:
            optimizer.watch(model)
        return optimizer

    def watch(self, model: torch.nn.Module) -> None:
        """Observe the surprise of every training forward pass of `model` (forward hooks; `from_model` does this when
        surprise weighting is on). The model is asked for `compute_surprise=True`; its per-token surprise and target
        count are summed over processes, so every process computes the same weight (their gradients are already
        averaged: different weights would make the replicas drift). Evaluation passes are not observed."""

        def ask(module, args, kwargs):
            if module.training:
                kwargs["compute_surprise"] = True
            return args, kwargs

        def observe(module, args, kwargs, output):
            surprise = getattr(output, "surprise", None)
            if not module.training or surprise is None:
                return
            targets = kwargs.get("shift_labels")
            if targets is None:
                targets = kwargs["labels"][:, 1:]
            totals = torch.stack([surprise.sum().float(), (targets != -100).sum().float()])
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(totals)
            self.observe_surprise(*totals.tolist())

        self.hooks = [model.register_forward_pre_hook(ask, with_kwargs=True),
                      model.register_forward_hook(observe, with_kwargs=True)]

    # The wrapper is what Trainer, accelerate and LR schedulers see; its groups are the inner optimizer's.
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value):
        self.optimizer.param_groups = value

    @property
    def state(self):
        return self.optimizer.state

    @state.setter
    def state(self, value):
        self.optimizer.state = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def observe_surprise(self, nll_sum: float | torch.Tensor, num_tokens: float | torch.Tensor = 1) -> None:
        """Add a micro-batch's summed negative log-likelihood (nats) over `num_tokens` targets to the step being
        accumulated; the step's surprise is their mean (over micro-batches, and processes if the caller reduced)."""
        self.pending_surprise[0] += float(nll_sum)
        self.pending_surprise[1] += float(num_tokens)

    def _surprise_weight(self) -> float:
        """The weight of this step's gradient in the slow levels; updates the running mean of surprise."""
        total, count = self.pending_surprise
        self.pending_surprise = [0.0, 0.0]
        if count <= 0:
            return 1.0
        surprise = total / count
        if self.running_surprise is None:
            self.running_surprise = surprise
        low, high = self.surprise_bounds
        weight = min(high, max(low, surprise / max(self.running_surprise, 1e-8)))
        if self.surprise_gate:
            weight = 1.0 if surprise >= self.running_surprise else 0.0
        self.running_surprise = self.surprise_momentum * self.running_surprise + (1 - self.surprise_momentum) * surprise
        self.last_surprise_weight = weight if self.surprise_weighting else 1.0
        return self.last_surprise_weight

    @torch.no_grad()
    def step(self, closure=None):
        """Accumulate this step's gradients; step the levels whose period divides the step count."""
        loss = closure() if closure is not None else None
        self.step_count += 1
        weight = self._surprise_weight()
        for k, (group, period) in enumerate(zip(self.optimizer.param_groups, self.periods)):
            if period == 1:
                continue
            self.weight_sums[k] += weight
            for p in group["params"]:
                if p.grad is None:
                    continue
                buffer = self.accumulated.get(id(p))
                if buffer is None:
                    self.accumulated[id(p)] = p.grad.detach() * weight
                else:
                    buffer.add_(p.grad, alpha=weight)
            if self.step_count % period == 0:
                for p in group["params"]:
                    buffer = self.accumulated.pop(id(p), None)
                    p.grad = None if buffer is None or self.weight_sums[k] <= 0 else buffer / self.weight_sums[k]
                self.weight_sums[k] = 0.0
            else:
                for p in group["params"]:
                    p.grad = None  # the inner optimizer skips parameters without a gradient
        self.optimizer.step()
        return loss

    def accumulated_gradient(self, param: torch.Tensor) -> torch.Tensor | None:
        """The gradient summed for `param` since its level last stepped (None for level-1 parameters)."""
        return self.accumulated.get(id(param))

    def state_dict(self) -> dict:
        index = {id(p): i for i, p in enumerate(p for g in self.optimizer.param_groups for p in g["params"])}
        return {
            "optimizer": self.optimizer.state_dict(),
            "step_count": self.step_count,
            "accumulated": {index[pid]: t.clone() for pid, t in self.accumulated.items()},
            "weight_sums": list(self.weight_sums),
            "running_surprise": self.running_surprise,
            "pending_surprise": list(self.pending_surprise),
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.step_count = state["step_count"]
        self.accumulated = {id(params[i]): t.to(params[i].device).clone() for i, t in state["accumulated"].items()}
        self.weight_sums = list(state["weight_sums"])
        self.running_surprise = state["running_surprise"]
        self.pending_surprise = list(state.get("pending_surprise", [0.0, 0.0]))

    def __repr__(self) -> str:
        return f"MultiTimescaleOptimizer(periods={self.periods}, inner={self.optimizer.__class__.__name__})"
