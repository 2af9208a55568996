"""Loading a saved model strictly, for the examples: this package's own classes, weights that match the config
exactly and hold finite numbers, and one-line `LoadError`s that name the folder or file.

`from_pretrained` alone warns about missing or unexpected weights and initialises the missing ones at random, which
evaluates a different model without a word; and with `trust_remote_code=True` it runs whatever Python a folder holds.
Here a folder of another model type is refused unless the user passed `--trust_remote_code`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging

from .checks import first_line, non_finite
from .models.lstm_trm import LSTMTRMForPuzzleSolving
from .models.nested_lstm import NestedLSTMForCausalLM, NestedLSTMModel

MODEL_CLASSES = {  # model_type -> (the class for `AutoModel`, the class for `AutoModelForCausalLM` or None)
    "nested_lstm": (NestedLSTMModel, NestedLSTMForCausalLM),
    "lstm_trm": (LSTMTRMForPuzzleSolving, None),
}


class LoadError(ValueError):
    """A model folder (or Hub repository) that cannot be loaded as it is; the message names it and says why."""


def read_config(name_or_path: str) -> dict:
    """config.json of a local folder or a Hub repository, as a dict."""
    path = Path(name_or_path)
    if path.is_file():
        raise LoadError(f"{path} is a file: give the folder that holds config.json and the weights")
    if path.is_dir():
        file = path / "config.json"
        if not file.is_file():
            raise LoadError(f"{path} has no config.json: give a folder saved by examples/train.py (or a Hub id)")
    else:
        from transformers.utils import cached_file

        try:
            file = Path(cached_file(name_or_path, "config.json"))
        except Exception as error:  # noqa: BLE001  (offline, not found, no access: all one line)
            raise LoadError(f"no such folder, and no Hub model {name_or_path!r} could be read "
                            f"({first_line(error)})") from None
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LoadError(f"{file} is not valid JSON ({first_line(error)})") from None


def load_model(name_or_path: str, causal_lm: bool = False, trust_remote_code: bool = False) -> torch.nn.Module:
    """The model in eval mode. `causal_lm`: with its language-model head (`AutoModelForCausalLM`)."""
    model_type = read_config(name_or_path).get("model_type")
    if model_type in MODEL_CLASSES:
        cls = MODEL_CLASSES[model_type][1 if causal_lm else 0]
        if cls is None:
            raise LoadError(f"{name_or_path} holds a {model_type} model, which is not a language model")
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()  # the load report table: its findings become the one-line error below
        try:
            model, info = cls.from_pretrained(name_or_path, output_loading_info=True)
        except Exception as error:  # noqa: BLE001  (corrupted files and shape mismatches alike)
            if "ignore_mismatched_sizes" in str(error):
                raise LoadError(f"the weights in {name_or_path} do not match its config.json (wrong shapes)") from None
            weights = sorted(Path(name_or_path).glob("*.safetensors")) if Path(name_or_path).is_dir() else []
            raise LoadError(f"could not load the weights {weights[0] if weights else 'of ' + name_or_path} "
                            f"({type(error).__name__}: {first_line(error)})") from None
        finally:
            logging.set_verbosity(verbosity)
        problems = [f"{what}: {', '.join(sorted(map(str, keys))[:3])}" for what, keys in (
            ("missing", info.get("missing_keys")), ("unexpected", info.get("unexpected_keys")),
            ("wrong shape", info.get("mismatched_keys"))) if keys]
        if problems:
            raise LoadError(f"the weights in {name_or_path} do not match its config.json ({'; '.join(problems)})")
    elif trust_remote_code:
        auto = AutoModelForCausalLM if causal_lm else AutoModel
        model = auto.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    else:
        raise LoadError(f"{name_or_path} holds a model of type {model_type!r}, not one of this package "
                        f"({', '.join(MODEL_CLASSES)}); its own code runs only with --trust_remote_code")
    broken = non_finite(model.state_dict().items())
    if broken:
        raise LoadError(f"the weights in {name_or_path} hold NaN or infinity ({len(broken)} tensors, e.g. "
                        f"{broken[0]}): the file is corrupted or the model diverged")
    return model.eval()


def load_tokenizer(name_or_path: str, model=None, trust_remote_code: bool = False):
    """The tokenizer saved beside a model; with `model`, checked to have the model's vocabulary size."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as error:  # noqa: BLE001
        raise LoadError(f"could not load the tokenizer of {name_or_path} ({first_line(error)})") from None
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab_size is not None and len(tokenizer) > vocab_size:
        raise LoadError(f"the tokenizer in {name_or_path} has {len(tokenizer)} tokens but the model only "
                        f"{vocab_size}: the folder's tokenizer belongs to another model")
    return tokenizer
