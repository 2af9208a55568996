from .configuration_nested_lstm import NestedLSTMConfig
from .modeling_nested_lstm import (
    NestedLSTMCausalLMOutput,
    NestedLSTMForCausalLM,
    NestedLSTMModel,
    NestedLSTMModelOutput,
    NestedLSTMPreTrainedModel,
    NestedLSTMState,
)

__all__ = [
    "NestedLSTMConfig",
    "NestedLSTMCausalLMOutput",
    "NestedLSTMForCausalLM",
    "NestedLSTMModel",
    "NestedLSTMModelOutput",
    "NestedLSTMPreTrainedModel",
    "NestedLSTMState",
]
