"""Learning while reading: the nested LM updates its levels on their own clocks as it reads a stream.

Reading a stream chunk by chunk (the carried-state evaluation), the model first scores a chunk, then learns from it:
the chunk's loss is backpropagated, and level k steps every `periods[k]` chunks from the gradients accumulated
since its last step (`MultiTimescaleOptimizer`, the training-time schedule, here on the reader's clock). A token is
therefore always scored by weights that were updated only on tokens before it. With `surprise="weight"` a chunk that
surprised the model more than the running mean writes more into the slow levels, with `surprise="gate"` a chunk
below the mean writes nothing. `levels="all"` updates every parameter every chunk: plain dynamic evaluation (Krause et
al., 2018). The learner works on its own copy of the model, so the model it was given (and any saved folder) never
changes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from .multitimescale import MultiTimescaleOptimizer

SURPRISE_MODES = ("off", "weight", "gate")
RESET_MODES = ("never", "document")


@dataclass
class OnlineSettings:
    """How the reader learns. `levels`: "all" (every parameter, every chunk), "slow" (levels 2 and up), or level
    numbers such as "1,2,3" (1 is the LSTM level with the embeddings and head); `periods`: chunks between the steps of
    each level (default 1, 4, 16, ... : level k every 4^(k-1) chunks); `lr`: the learning rate (`lr_scale` per level
    multiplies it); `optimizer`: "sgd" or "adam"; `decay`: after each step, pull learned weights this fraction of the
    way back to the trained ones; `reset`: "document" restores the trained weights (and a fresh optimizer) at every
    document start, "never" keeps learning across documents."""

    levels: str = "slow"
    lr: float = 1e-3
    periods: list[int] | None = None
    lr_scale: list[float] | None = None
    optimizer: str = "sgd"
    surprise: str = "off"
    decay: float = 0.0
    reset: str = "never"
    extra: dict = field(default_factory=dict)  # inner optimizer keyword arguments

    def chosen_levels(self, num_levels: int) -> list[int]:
        """0-based indices of the levels that learn."""
        if self.levels == "all":
            return list(range(num_levels))
        if self.levels == "slow":
            return list(range(1, num_levels))
        try:
            chosen = sorted({int(part) - 1 for part in self.levels.split(",") if part.strip()})
        except ValueError:
            chosen = []
        if not chosen or min(chosen) < 0 or max(chosen) >= num_levels:
            raise ValueError(f"online levels must be all, slow or level numbers 1..{num_levels} separated by commas "
                             f"(e.g. 1,2,3), got {self.levels!r}")
        return chosen

    def check(self, num_levels: int) -> None:
        """ValueError naming the setting for anything that cannot work."""
        self.chosen_levels(num_levels)
        if not 0 < self.lr < math.inf:
            raise ValueError(f"online_lr must be a finite positive number, got {self.lr}")
        if self.periods is not None:
            if len(self.periods) != num_levels:
                raise ValueError(f"online_periods needs one period per level ({num_levels}), got {self.periods}")
            if any(int(p) != p or p < 1 for p in self.periods):
                raise ValueError(f"online_periods must be positive integers (chunks), got {self.periods}")
        if self.lr_scale is not None and (len(self.lr_scale) != num_levels
                                          or not all(0 <= s < math.inf for s in self.lr_scale)):
            raise ValueError(f"online_lr_scale needs one non-negative scale per level ({num_levels}), "
                             f"got {self.lr_scale}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"online_optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.surprise not in SURPRISE_MODES:
            raise ValueError(f"online_surprise must be one of {', '.join(SURPRISE_MODES)}, got {self.surprise!r}")
        if self.reset not in RESET_MODES:
            raise ValueError(f"online_reset must be one of {', '.join(RESET_MODES)}, got {self.reset!r}")
        if not 0 <= self.decay < 1:
            raise ValueError(f"online_decay must be in [0, 1), got {self.decay}")


class OnlineLearner:
    """A copy of a nested LM that learns from what it reads (see the module docstring). `learner.model` is the copy;
    `learn(loss)` is called after a chunk was scored; `start_document()` where a document starts."""

    def __init__(self, model, settings: OnlineSettings):
        levels = model.level_parameters()
        settings.check(len(levels))
        self.settings = settings
        self.model = copy.deepcopy(model)
        self.model.eval()  # no dropout: the reader scores as the static model does
        copied = self.model.level_parameters()
        chosen = settings.chosen_levels(len(copied))
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.levels = [copied[k] for k in chosen]
        for level in self.levels:
            for param in level:
                param.requires_grad_(True)
        if settings.levels == "all":
            self.periods = [1] * len(chosen)
        else:
            periods = settings.periods or [4 ** k for k in range(len(copied))]
            self.periods = [int(periods[k]) for k in chosen]
        scales = settings.lr_scale or [1.0] * len(copied)
        self.scales = [scales[k] for k in chosen]
        self.trained = [[p.detach().clone() for p in level] for level in self.levels]
        self.chunks = 0
        self.optimizer = self._optimizer()

    def _optimizer(self) -> MultiTimescaleOptimizer:
        groups = [{"params": level, "lr": self.settings.lr * scale} for level, scale in zip(self.levels, self.scales)]
        inner_class = torch.optim.SGD if self.settings.optimizer == "sgd" else torch.optim.Adam
        inner = inner_class(groups, lr=self.settings.lr, **self.settings.extra)
        return MultiTimescaleOptimizer(inner, self.periods, surprise_weighting=self.settings.surprise == "weight",
                                       surprise_gate=self.settings.surprise == "gate")

    @property
    def wants_surprise(self) -> bool:
        return self.settings.surprise != "off"

    def learn(self, loss: torch.Tensor, surprise: torch.Tensor | None = None, targets: int = 1) -> None:
        """Backpropagate a scored chunk's mean loss and step the levels whose period has come."""
        loss.backward()
        if surprise is not None:
            self.optimizer.observe_surprise(surprise.sum(), targets)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.chunks += 1
        if self.settings.decay:
            with torch.no_grad():
                for level, trained in zip(self.levels, self.trained):
                    for param, original in zip(level, trained):
                        param.lerp_(original, self.settings.decay)

    def start_document(self) -> None:
        """With `reset="document"`: back to the trained weights, with a fresh optimizer and clock."""
        if self.settings.reset != "document" or self.chunks == 0:
            return
        with torch.no_grad():
            for level, trained in zip(self.levels, self.trained):
                for param, original in zip(level, trained):
                    param.copy_(original)
        self.optimizer = self._optimizer()
        self.chunks = 0


@dataclass
class OnlineArguments:
    """The flags of `examples/evaluate_model.py` and `examples/generate.py` that turn learning while reading on (the
    command layer builds them from this dataclass)."""

    online_levels: str | None = field(default=None, metadata={
        "help": "Learning while reading (nested LM): all (dynamic evaluation), slow (levels 2+), or level numbers "
                "like 1,2,3; default: off (the static model)."})
    online_lr: float = field(default=1e-3, metadata={"help": "Its learning rate."})
    online_periods: list[int] | None = field(default=None, metadata={
        "help": "Chunks between steps, per level (1 4 16)."})
    online_lr_scale: list[float] | None = field(default=None, metadata={"help": "Learning-rate factor per level."})
    online_optimizer: str = field(default="sgd", metadata={"help": "sgd or adam."})
    online_surprise: str = field(default="off", metadata={"help": "off, weight or gate (slow levels)."})
    online_reset: str = field(default="never", metadata={"help": "never, or document: trained weights at each start."})
    online_decay: float = field(default=0.0, metadata={"help": "Pull toward the trained weights per step."})

    def settings(self, config: dict) -> OnlineSettings | None:
        """The settings the flags ask for (None: learning while reading is off), checked against the model's config
        (its number of levels); ValueError naming the flag."""
        if not self.online_levels:
            return None
        settings = OnlineSettings(levels=self.online_levels, lr=self.online_lr, periods=self.online_periods,
                                  lr_scale=self.online_lr_scale, optimizer=self.online_optimizer,
                                  surprise=self.online_surprise, decay=self.online_decay, reset=self.online_reset)
        settings.check(len(config.get("level_update_every", [1])))
        return settings
