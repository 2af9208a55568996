"""An exponential moving average of a model's weights (TRM evaluates and ships the EMA weights)."""

from __future__ import annotations

import contextlib

import torch


class ExponentialMovingAverage:
    """EMA of a model's trainable parameters.

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
