from .configuration_lstm_trm import LSTMTRMConfig
from .modeling_lstm_trm import LSTMTRMCarry, LSTMTRMModel, LSTMTRMOutput, LSTMTRMPreTrainedModel, LSTMTRMSolveOutput

__all__ = [
    "LSTMTRMConfig",
    "LSTMTRMCarry",
    "LSTMTRMModel",
    "LSTMTRMOutput",
    "LSTMTRMPreTrainedModel",
    "LSTMTRMSolveOutput",
]
