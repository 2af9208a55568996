"""lstm-trm: stateful recurrent models for Hugging Face Transformers.

    models/     the two models, each with its configuration (Hub-flat files)
    training/   the mechanism: carried-state protocol, StatefulTrainer, EMA, MultiTimescaleOptimizer, learning while
                reading (online.py), run helpers, safety (divergence, Ctrl-C, saving before what can fail)
    tasks/      one module per task (text, sudoku): its data, augmentation, evaluation and training recipe
    hub.py      model cards and Hub repositories
    loading.py  strict loading of a saved model for the examples (own classes; remote code only when asked)
    cli.py      one-line errors and exit codes of the command-line examples
    checks.py   the first line of an error, and which tensors are not finite (shared by the above)

Importing the package registers its configurations and models with the Auto classes, and marks them for
`trust_remote_code` sharing, so `save_pretrained` writes the model code beside the weights; and it registers
`pipeline("puzzle-solving")` (`PuzzleSolvingPipeline`).
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.pipelines import PIPELINE_REGISTRY

from .auto import AutoModelForPuzzleSolving
from .models.lstm_trm import (
    LSTMTRMCarry,
    LSTMTRMConfig,
    LSTMTRMForPuzzleSolving,
    LSTMTRMModel,
    LSTMTRMOutput,
    LSTMTRMPreTrainedModel,
    LSTMTRMSolveOutput,
)
from .models.lstm_trm.pipeline_lstm_trm import PIPELINE_TASK
from .models.nested_lstm import (
    NestedLSTMCausalLMOutput,
    NestedLSTMConfig,
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
AutoModelForPuzzleSolving.register(LSTMTRMConfig, LSTMTRMForPuzzleSolving, exist_ok=True)
LSTMTRMConfig.register_for_auto_class()
LSTMTRMModel.register_for_auto_class("AutoModel")
LSTMTRMForPuzzleSolving._auto_class = "AutoModelForPuzzleSolving"  # our Auto class: register_for_auto_class knows
# only transformers' own

from .pipelines import PuzzleSolvingPipeline  # noqa: E402  (the folders' pipeline, and ARC with the package)

if PIPELINE_TASK not in PIPELINE_REGISTRY.supported_tasks:  # pipeline("puzzle-solving", model=...)
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=PuzzleSolvingPipeline,
                                        pt_model=AutoModelForPuzzleSolving, type="text")

from .tasks.text.streams import BoundaryAwareCollator, TokenStreams  # noqa: E402  (after registration)
from .training import CarriedState, ExponentialMovingAverage, MultiTimescaleOptimizer, StatefulTrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AutoModelForPuzzleSolving",
    "BoundaryAwareCollator",
    "CarriedState",
    "ExponentialMovingAverage",
    "MultiTimescaleOptimizer",
    "StatefulTrainer",
    "TokenStreams",
    "LSTMTRMCarry",
    "LSTMTRMConfig",
    "LSTMTRMForPuzzleSolving",
    "LSTMTRMModel",
    "LSTMTRMOutput",
    "LSTMTRMPreTrainedModel",
    "LSTMTRMSolveOutput",
    "PuzzleSolvingPipeline",
    "NestedLSTMConfig",
    "NestedLSTMState",
    "NestedLSTMModel",
    "NestedLSTMForCausalLM",
    "NestedLSTMPreTrainedModel",
    "NestedLSTMModelOutput",
    "NestedLSTMCausalLMOutput",
]
