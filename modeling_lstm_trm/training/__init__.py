"""The training mechanism, shared by every task: the carried-state protocol, the trainer that carries the state,
the EMA of the weights, the multi-timescale optimizer, AdamW with sparse puzzle-embedding rows, and what every run
shares (`runs`)."""

from .carried_state import CarriedState
from .ema import ExponentialMovingAverage
from .multitimescale import MultiTimescaleOptimizer
from .sparse_rows import AdamWWithSparseRows
from .trainer import StatefulTrainer

__all__ = ["AdamWWithSparseRows", "CarriedState", "ExponentialMovingAverage", "MultiTimescaleOptimizer",
           "StatefulTrainer"]
