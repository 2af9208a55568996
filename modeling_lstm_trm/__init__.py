"""lstm-trm: stateful recurrent models for Hugging Face Transformers.

Importing the package registers its configurations and models with the Auto classes, and marks them for
`trust_remote_code` sharing, so `save_pretrained` writes the model code beside the weights.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_lstm_trm import LSTMTRMConfig
from .configuration_nested_lstm import NestedLSTMConfig
from .modeling_lstm_trm import (
    LSTMTRMCarry,
    LSTMTRMModel,
    LSTMTRMOutput,
    LSTMTRMPreTrainedModel,
    LSTMTRMSolveOutput,
)
from .modeling_nested_lstm import (
    NestedLSTMCausalLMOutput,
    NestedLSTMForCausalLM,
    NestedLSTMModel,
    NestedLSTMModelOutput,
    NestedLSTMPreTrainedModel,
    NestedLSTMState,
)

AutoConfig.register(NestedLSTMConfig.model_type, NestedLSTMConfig, exist_ok=True)
AutoModel.register(NestedLSTMConfig, NestedLSTMModel, exist_ok=True)
AutoModelForCausalLM.register(NestedLSTMConfig, NestedLSTMForCausalLM, exist_ok=True)
NestedLSTMConfig.register_for_auto_class()
NestedLSTMModel.register_for_auto_class("AutoModel")
NestedLSTMForCausalLM.register_for_auto_class("AutoModelForCausalLM")
AutoConfig.register(LSTMTRMConfig.model_type, LSTMTRMConfig, exist_ok=True)
AutoModel.register(LSTMTRMConfig, LSTMTRMModel, exist_ok=True)
LSTMTRMConfig.register_for_auto_class()
LSTMTRMModel.register_for_auto_class("AutoModel")

from .optimization import MultiTimescaleOptimizer  # noqa: E402  (after registration: needs only torch)
from .streams import BoundaryAwareCollator, TokenStreams  # noqa: E402
from .trainer import StatefulTrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BoundaryAwareCollator",
    "MultiTimescaleOptimizer",
    "StatefulTrainer",
    "TokenStreams",
    "LSTMTRMCarry",
    "LSTMTRMConfig",
    "LSTMTRMModel",
    "LSTMTRMOutput",
    "LSTMTRMPreTrainedModel",
    "LSTMTRMSolveOutput",
    "NestedLSTMConfig",
    "NestedLSTMState",
    "NestedLSTMModel",
    "NestedLSTMForCausalLM",
    "NestedLSTMPreTrainedModel",
    "NestedLSTMModelOutput",
    "NestedLSTMCausalLMOutput",
]
