from .configuration_lstm_trm import LSTMTRMConfig
from .modeling_lstmtrm import (
    LSTMTRMCarry,
    LSTMTRMForPuzzleSolving,
    LSTMTRMModel,
    LSTMTRMModelOutput,
    LSTMTRMOutput,
    LSTMTRMPreTrainedModel,
    LSTMTRMSolveOutput,
)

__all__ = [
    "LSTMTRMConfig",
    "LSTMTRMCarry",
    "LSTMTRMForPuzzleSolving",
    "LSTMTRMModel",
    "LSTMTRMModelOutput",
    "LSTMTRMOutput",
    "LSTMTRMPreTrainedModel",
    "LSTMTRMSolveOutput",
]
