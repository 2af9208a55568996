"""Convert a checkpoint of TRM's own code (SamsungSAILMontreal/TinyRecursiveModels) into an LSTM-TRM model folder.

    python -m modeling_lstm_trm.models.lstm_trm.convert_trm_original_to_hf \
        --checkpoint step_50000 --config all_config.yaml --output_dir trm-sudoku-mlp

TRM saves `torch.save(model.state_dict())` of its `ACTLossHead` (keys like
`_orig_mod.model.inner.L_level.layers.0.mlp.gate_up_proj.weight`; `_orig_mod.` when it was compiled) beside the run's
`all_config.yaml`. The result is `recurrence="trm"` with TRM's shapes and conventions (`puzzle_emb_len`,
`mlp_multiple=256`, `q_head_input="first"`, `mlp_mixer_norm="positions"`, rotary positions alone for attention),
saved with `save_pretrained` so `AutoModel` loads it, and equal to TRM's network to float32 rounding
(tests/test_trm_parity.py checks it against outputs of TRM's code).
The checkpoint is read with `weights_only=True`: tensors only, no code runs.
"""

from __future__ import annotations

import argparse
import json
import math
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


def convert_state_dict(trm_state: dict[str, torch.Tensor], config: LSTMTRMConfig) -> dict[str, torch.Tensor]:
    """TRM's state dict (compiled or not) under our names, in float32; ValueError naming an unknown, missing or
    mis-shaped key."""
    expected = LSTMTRMForPuzzleSolving(config).state_dict()
    out = {}
    for key, tensor in trm_state.items():
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
    missing = sorted(set(expected) - set(out))
    if missing:
        raise ValueError(f"the TRM checkpoint has no {missing[0]} ({len(missing)} weights missing)")
    return out


def convert(trm_state: dict[str, torch.Tensor], config: LSTMTRMConfig) -> LSTMTRMForPuzzleSolving:
    model = LSTMTRMForPuzzleSolving(config)
    model.load_state_dict(convert_state_dict(trm_state, config), strict=True)
    return model.eval()


def to_our_vocabulary(model: LSTMTRMForPuzzleSolving, task: str) -> LSTMTRMForPuzzleSolving:
    """TRM's token ids for `task` made ours, so the task's tokenizer, solver and evaluation read the model. Mazes and
    ARC canvases are numbered alike (pad 0, then TRM's characters); TRM's Sudoku is (pad 0, blank 1, digits 2-10)
    and ours (blank 0, digits 1-9): the pad row of the embedding and of the answer head is dropped, so our token k
    is TRM's k + 1 (a pad never reaches a Sudoku grid, and an answer is never pad)."""
    if task != "sudoku":
        return model
    config = model.config.to_dict()
    config.update(vocab_size=model.config.vocab_size - 1)
    state = model.state_dict()
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        state[name] = state[name][1:]
    smaller = LSTMTRMForPuzzleSolving(LSTMTRMConfig.from_dict(config))
    smaller.load_state_dict(state, strict=True)
    return smaller.eval()


TASKS = ("sudoku", "maze", "arc")


def task_tokenizer(task: str, config: LSTMTRMConfig):
    """The tokenizer of `task` for a grid of `config.seq_len` cells; ValueError where TRM's vocabulary is not it."""
    from ...tasks import get_task

    side = math.isqrt(config.seq_len)
    ours = get_task(task)
    expected = len(ours.vocabulary(side)) + (task == "sudoku")  # TRM's Sudoku has a pad token besides ours
    if side * side != config.seq_len or config.vocab_size != expected:
        raise ValueError(f"a TRM {task} model has {expected} tokens on a square grid; this one has "
                         f"{config.vocab_size} tokens on {config.seq_len} cells")
    return ours.tokenizer(side)


def trm_arc_versions(data_dir: str | None, config: LSTMTRMConfig):
    """The task versions behind a TRM ARC model's puzzle identifiers (its dataset folder's identifiers.json), for the
    test tasks of that folder, so that `evaluate_model.py --task arc --data_dir FOLDER` votes over them."""
    from ...tasks.arc.arc_dataset import is_trm_folder, load_trm_folder, versions_from_trm

    if not is_trm_folder(data_dir):
        raise ValueError(f"--task arc needs --data_dir: TRM's ARC dataset folder with identifiers.json and "
                         f"test_puzzles.json (got {data_dir})")
    tasks, identifiers = load_trm_folder(data_dir)
    if len(identifiers) != config.num_puzzle_identifiers:
        raise ValueError(f"{data_dir}/identifiers.json names {len(identifiers)} identifiers, the model has "
                         f"{config.num_puzzle_identifiers}: the folder belongs to another model")
    return versions_from_trm(identifiers, tasks, f"{data_dir}/identifiers.json")


def main(argv: list[str] | None = None) -> Path:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a file TRM's pretrain.py saved (torch.save state dict)")
    parser.add_argument("--config", required=True, help="the run's all_config.yaml")
    parser.add_argument("--dataset_json", help="the dataset's dataset.json (seq_len, vocab_size, identifiers)")
    parser.add_argument("--task", choices=TASKS, help="what the model solves: writes its tokenizer and maps TRM's "
                                                         "token ids to the task's, so solve.py and evaluate_model.py "
                                                         "read it (without it: TRM's ids, the network alone)")
    parser.add_argument("--data_dir", help="--task arc: the TRM dataset folder (identifiers.json, test_puzzles.json), "
                                           "whose puzzle identifiers become the model's task versions")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--overwrite_output_dir", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    if out.exists() and any(out.iterdir()) and not args.overwrite_output_dir:
        parser.error(f"--output_dir {out} is not empty (--overwrite_output_dir writes into it anyway)")
    try:
        run = yaml.safe_load(Path(args.config).read_text())
        arch = dict(run["arch"])
        loss = (arch.pop("loss", None) or {}).get("loss_type", "stablemax_cross_entropy")
        if args.dataset_json:
            meta = json.loads(Path(args.dataset_json).read_text())
            arch.update({k: meta[k] for k in ("seq_len", "vocab_size", "num_puzzle_identifiers") if k in meta})
        config = config_from_trm(arch, loss)
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{args.checkpoint} holds a {type(state).__name__}, not a state dict")
        model = convert(state, config)
        if args.task:
            model = to_our_vocabulary(model, args.task)
            tokenizer = task_tokenizer(args.task, config)
            model.config.task = args.task
        if args.task == "arc":
            arc_versions = trm_arc_versions(args.data_dir, config)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, yaml.YAMLError) as error:
        parser.error(f"{type(error).__name__}: {error}".splitlines()[0])
    model.save_pretrained(out)
    if args.task:
        tokenizer.save_pretrained(out)
    if args.task == "arc":
        from ...tasks.arc.arc_dataset import save_versions

        save_versions(arc_versions, out, math.isqrt(config.seq_len))
    (out / "CONVERTED_FROM.txt").write_text(
        f"Converted from TRM checkpoint {args.checkpoint} with {args.config} (SamsungSAILMontreal/TinyRecursiveModels) "
        "by convert_trm_original_to_hf.py\n")
    print(f"Wrote {out} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return out


if __name__ == "__main__":
    main()
