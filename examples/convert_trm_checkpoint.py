"""Convert a checkpoint of TRM's own code (SamsungSAILMontreal/TinyRecursiveModels) into a model folder that
`AutoModelForPuzzleSolving` loads.

    python examples/convert_trm_checkpoint.py --checkpoint step_50000 --config all_config.yaml \
        --dataset_json dataset.json --output_dir trm-sudoku-mlp
    python examples/convert_trm_checkpoint.py ... --task sudoku   # our Sudoku tokens: solve.py and evaluate read it
    python examples/convert_trm_checkpoint.py ... --task arc --data_dir data/arc1concept-aug-1000

`--checkpoint` is the file TRM's `pretrain.py` saved (`torch.save` of the state dict, compiled `_orig_mod.` keys or
plain, bfloat16 or float32), read with `weights_only=True`: a file that would run code is refused. `--config` is the
run's `all_config.yaml`, `--dataset_json` its dataset's `dataset.json` (seq_len, vocab_size, identifiers). Without
`--task` the folder holds TRM's network with TRM's token ids; with it, the task's tokenizer, its token ids and its
name (and for ARC the task versions of the TRM dataset folder's identifiers). A non-empty --output_dir is refused unless
`--overwrite_output_dir`.
Runs the installed package's code wherever it is started (a script, not `python -m`: the working directory, which may
be a downloaded folder, is not on its import path).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.models.lstm_trm.convert_trm_original_to_hf import convert, load_trm_state, read_trm_run
from modeling_lstm_trm.tasks import TASKS, get_task
from modeling_lstm_trm.tasks.arguments import check_path


def main(argv: list[str] | None = None) -> Path:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a file TRM's pretrain.py saved (torch.save state dict)")
    parser.add_argument("--config", required=True, help="the run's all_config.yaml")
    parser.add_argument("--dataset_json", help="the dataset's dataset.json (seq_len, vocab_size, identifiers)")
    parser.add_argument("--task", help=f"what the model solves ({', '.join(name for name in TASKS if name != 'lm')}): "
                                       "writes its tokenizer and maps TRM's token ids to the task's, so solve.py and "
                                       "evaluate_model.py read it (without it: TRM's ids, the network alone)")
    parser.add_argument("--data_dir", help="--task arc: the TRM dataset folder (identifiers.json, test_puzzles.json), "
                                           "whose puzzle identifiers become the model's task versions")
    parser.add_argument("--output_dir", required=True, help="a new (or empty) folder")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="write into a non-empty --output_dir")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        parser.error(f"--output_dir {out} is a file: give a folder")
    if out.exists() and any(out.iterdir()) and not args.overwrite_output_dir:
        parser.error(f"--output_dir {out} is not empty (--overwrite_output_dir writes into it anyway)")
    try:
        for flag in ("config", "dataset_json"):
            check_path(getattr(args, flag), flag)
        check_path(args.data_dir, "data_dir", folder=True)
    except ValueError as error:
        parser.error(str(error))
    task = get_task(args.task) if args.task else None
    if task is not None and not hasattr(task, "from_trm"):
        parser.error(f"--task {args.task}: not a puzzle task (TRM's models solve puzzles)")
    config = read_trm_run(args.config, args.dataset_json)
    state = load_trm_state(args.checkpoint)
    try:
        model = convert(state, config)
    except ValueError as error:  # a key or a shape: name the file too
        raise ValueError(f"{args.checkpoint}: {error}") from None
    write_beside = None
    if task is not None:
        model, write_beside = task.from_trm(model, args.data_dir)
    model.save_pretrained(out)
    if write_beside is not None:
        write_beside(out)
    (out / "CONVERTED_FROM.txt").write_text(
        f"Converted from TRM checkpoint {args.checkpoint} with {args.config} (SamsungSAILMontreal/TinyRecursiveModels) "
        "by examples/convert_trm_checkpoint.py\n")
    print(f"Wrote {out} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return out


if __name__ == "__main__":
    run_cli(main)
