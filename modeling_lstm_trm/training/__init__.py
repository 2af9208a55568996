"""The training mechanism, shared by every task: the carried-state protocol, the trainer that carries the state,
the EMA of the weights, the multi-timescale optimizer, and what every run shares (`runs`)."""

from .carried_state import CarriedState
from .ema import ExponentialMovingAverage
from .multitimescale import MultiTimescaleOptimizer
from .trainer import StatefulTrainer

__all__ = ["CarriedState", "ExponentialMovingAverage", "MultiTimescaleOptimizer", "StatefulTrainer"]
