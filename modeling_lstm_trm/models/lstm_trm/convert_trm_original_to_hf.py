"""Convert a checkpoint of TRM's own code (SamsungSAILMontreal/TinyRecursiveModels) into an LSTM-TRM model.

    python examples/convert_trm_checkpoint.py --checkpoint step_50000 --config all_config.yaml --output_dir trm-sudoku

TRM saves `torch.save(model.state_dict())` of its `ACTLossHead` (keys like
`_orig_mod.model.inner.L_level.layers.0.mlp.gate_up_proj.weight`; `_orig_mod.` when it was compiled) beside the run's
`all_config.yaml`. The result is `recurrence="trm"` with TRM's shapes and conventions (`puzzle_emb_len`,
`mlp_multiple=256`, `q_head_input="first"`, `mlp_mixer_norm="positions"`, rotary positions alone for attention),
equal to TRM's network to float32 rounding (tests/test_trm_parity.py checks it against outputs of TRM's code).
This file knows the network alone; making the model read a task's tokens is the task's business
(`PuzzleTask.from_trm`), and the command above puts the two together.
The checkpoint is read with `weights_only=True`: tensors only, no code runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .configuration_lstm_trm import LSTMTRMConfig
from .modeling_lstmtrm import LSTMTRMForPuzzleSolving

LOSS_TYPES = {"stablemax_cross_entropy": "stablemax", "softmax_cross_entropy": "softmax"}

# TRM's names (after `_orig_mod.` and `model.inner.`) -> ours.
KEY_MAP = [
    (r"embed_tokens\.embedding_weight", "model.embed_tokens.weight"),
    (r"embed_pos\.embedding_weight", "model.embed_positions.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"q_head\.(weight|bias)", r"q_head.\1"),
    (r"puzzle_emb\.weights", "model.puzzle_emb.weight"),
    (r"H_init", "model.c_init"),  # TRM's answer state y (z_H) is our c
    (r"L_init", "model.h_init"),  # its latent z (z_L) is our h
    (r"L_level\.layers\.(\d+)\.self_attn\.(qkv_proj|o_proj)\.weight", r"model.cell.blocks.\1.token_mixer.\2.weight"),
    (r"L_level\.layers\.(\d+)\.mlp_t\.(gate_up_proj|down_proj)\.weight", r"model.cell.blocks.\1.token_mixer.\2.weight"),
    (r"L_level\.layers\.(\d+)\.mlp\.(gate_up_proj|down_proj)\.weight", r"model.cell.blocks.\1.channel_mlp.\2.weight"),
]


def config_from_trm(arch: dict, loss_type: str = "stablemax_cross_entropy", **overrides) -> LSTMTRMConfig:
    """Our configuration of TRM's network, from the `arch` section of its `all_config.yaml` (with the dataset's
    `seq_len`, `vocab_size` and `num_puzzle_identifiers` in it or in `overrides`)."""
    arch = {**arch, **overrides}
    mlp_t, positions = bool(arch.get("mlp_t", False)), arch.get("pos_encodings", "rope")
    if not mlp_t and positions != "rope":
        raise ValueError(f"TRM's attention variant with pos_encodings={positions!r} is not supported (only rope)")
    if positions not in ("rope", "learned", "none"):
        raise ValueError(f"unknown pos_encodings {positions!r}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss {loss_type!r} (expected one of {', '.join(LOSS_TYPES)})")
    missing = [k for k in ("seq_len", "vocab_size", "num_puzzle_identifiers") if arch.get(k) is None]
    if missing:
        raise ValueError(f"the configuration does not give {', '.join(missing)}: pass the dataset's dataset.json")
    puzzle_emb_ndim = int(arch.get("puzzle_emb_ndim", 0))
    return LSTMTRMConfig(
        vocab_size=int(arch["vocab_size"]), seq_len=int(arch["seq_len"]),
        num_puzzle_identifiers=int(arch["num_puzzle_identifiers"]), puzzle_emb_ndim=puzzle_emb_ndim,
        puzzle_emb_len=int(arch.get("puzzle_emb_len", 16)) if puzzle_emb_ndim else 0,
        T_cycles=int(arch["H_cycles"]), n_cycles=int(arch["L_cycles"]), num_layers=int(arch["L_layers"]),
        hidden_size=int(arch["hidden_size"]), expansion=float(arch["expansion"]), num_heads=int(arch["num_heads"]),
        mixer="mlp" if mlp_t else "attention", recurrence="trm", halt_max_steps=int(arch["halt_max_steps"]),
        halt_exploration_prob=float(arch["halt_exploration_prob"]), forward_dtype=arch.get("forward_dtype", "bfloat16"),
        rms_norm_eps=float(arch.get("rms_norm_eps", 1e-5)), rope_theta=float(arch.get("rope_theta", 10000.0)),
        loss_type=LOSS_TYPES[loss_type], q_loss_weight=0.5, mlp_multiple=256, q_head_input="first",
        mlp_mixer_norm="positions",
        absolute_positions=positions == "learned", batch_size=arch.get("batch_size"))


def read_trm_run(config_path: str | Path, dataset_json: str | Path | None = None) -> LSTMTRMConfig:
    """Our configuration of a TRM run, from its `all_config.yaml` (and the dataset's `dataset.json`, which gives
    `seq_len`, `vocab_size` and `num_puzzle_identifiers` where the run's file does not); ValueError naming the file."""
    import yaml

    try:
        run = yaml.safe_load(Path(config_path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{config_path}: cannot be read as TRM's all_config.yaml ({_first_line(error)})") from None
    if not isinstance(run, dict) or not isinstance(run.get("arch"), dict):
        raise ValueError(f"{config_path} has no 'arch' section (TRM's all_config.yaml has one)")
    arch = dict(run["arch"])
    loss = arch.pop("loss", None)
    loss_type = loss.get("loss_type", "stablemax_cross_entropy") if isinstance(loss, dict) else \
        "stablemax_cross_entropy"
    if dataset_json:
        try:
            meta = json.loads(Path(dataset_json).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{dataset_json}: cannot be read as TRM's dataset.json ({_first_line(error)})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{dataset_json} is not a JSON object (TRM's dataset.json is one)")
        arch.update({k: meta[k] for k in ("seq_len", "vocab_size", "num_puzzle_identifiers") if k in meta})
    try:
        return config_from_trm(arch, loss_type)
    except (KeyError, TypeError, ValueError) as error:
        missing = f"no {error} in its 'arch' section" if isinstance(error, KeyError) else _first_line(error)
        raise ValueError(f"{config_path}: {missing}") from None


def load_trm_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict TRM's `pretrain.py` saved, read with `weights_only=True` (tensors only: a file that would run
    code is refused); ValueError naming the file for anything that is not such a state dict."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--checkpoint: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (unpickling refusals, truncated zips, OS errors: all one line)
        refused = "Weights only load failed" in str(error)
        why = ("holds more than tensors, which weights-only loading refuses (it could run code)" if refused
               else f"is truncated or not a file torch.save wrote ({_first_line(error).split('. ')[0]})")
        raise ValueError(f"{path} {why}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def convert_state_dict(trm_state: dict[str, torch.Tensor], config: LSTMTRMConfig) -> dict[str, torch.Tensor]:
    """TRM's state dict (compiled or not) under our names, in float32; ValueError naming an unknown, missing,
    mis-shaped or non-tensor key, or weights that are not finite."""
    expected = LSTMTRMForPuzzleSolving(config).state_dict()
    out = {}
    for key, tensor in trm_state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise ValueError(f"the TRM checkpoint holds a {type(tensor).__name__} under {key!r}, not a tensor")
        short = re.sub(r"^(_orig_mod\.)?(model\.)?(inner\.)?", "", key)
        if short.startswith("puzzle_emb.local_") or short.startswith("rotary_emb."):
            continue  # TRM's per-batch scratch buffers and cached rotary tables: not weights
        for pattern, replacement in KEY_MAP:
            if re.fullmatch(pattern, short):
                name = re.sub(pattern, replacement, short)
                break
        else:
            raise ValueError(f"unknown key in the TRM checkpoint: {key}")
        if name not in expected:
            raise ValueError(f"{key} has no place in this configuration ({name})")
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(f"{key}: shape {tuple(tensor.shape)}, but the configuration needs "
                             f"{tuple(expected[name].shape)}")
        out[name] = tensor.detach().to(torch.float32)
        if not bool(torch.isfinite(out[name]).all()):
            raise ValueError(f"{key} holds NaN or infinity: the TRM run diverged or the file is corrupted")
    missing = sorted(set(expected) - set(out))
    if missing:
        raise ValueError(f"the TRM checkpoint has no {missing[0]} ({len(missing)} weights missing)")
    return out


def convert(trm_state: dict[str, torch.Tensor], config: LSTMTRMConfig) -> LSTMTRMForPuzzleSolving:
    model = LSTMTRMForPuzzleSolving(config)
    model.load_state_dict(convert_state_dict(trm_state, config), strict=True)
    return model.eval()


