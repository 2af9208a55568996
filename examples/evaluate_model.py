"""Evaluate a trained model: the nested LM on a text file, or LSTM-TRM on Sudoku puzzles (the task follows the
model's config unless --task says otherwise).

    python examples/evaluate_model.py --model D --file ../shared/data/wikitext-2-heldout/test.txt
    python examples/evaluate_model.py --model D --file ../shared/data/sudoku/easy_50.txt
    python examples/evaluate_model.py --model D --grid_size 6 --num_puzzles 1000

Language model: the file is tokenized with the model's tokenizer and read as one stream, in order, the state carried
across chunks and reset where a document starts (WikiText titles for a WikiText file, else the file is one
document); every token after the first is a target. Prints perplexity, bits per token and per character.

Sudoku: solutions of file puzzles are computed by the solver. Scores: exact-puzzle accuracy and accuracy on blank
cells at the step where the model halts, the same after `halt_max_steps` steps, and the mean halting step. Writes
`eval_<name>.json` and a bar chart `eval_<name>.png` (into --output_dir, default the model folder).

Either way the last line printed is the JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.loading import load_model, load_tokenizer, read_config
from modeling_lstm_trm.tasks.sudoku.puzzles import BOXES, DEFAULT_GIVENS, evaluate_model, generate_puzzles, solve_file
from modeling_lstm_trm.tasks.text.streams import auto_boundary, encode_corpus, evaluate_stream, rows_to_documents
from modeling_lstm_trm.training.safety import finite_json


def bar_chart(results: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["exact_accuracy", "exact_accuracy_at_max_steps", "cell_accuracy", "cell_accuracy_at_max_steps"]
    labels = ["exact\n(halting step)", "exact\n(max steps)", "blank cells\n(halting step)", "blank cells\n(max steps)"]
    values = [results[n] for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bars = ax.bar(labels, values, color=["#1f5fbf", "#6f9fdf", "#2f9f5f", "#7fcf9f"])
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.3f}", ha="center", fontsize=9)
    ax.set_ylim(0, 1.1)
    ax.set_title(f"{title}: {results['puzzles']} puzzles, mean halting step {results['mean_steps']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["lm", "sudoku"], help="default: from the model's config")
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a text file (LM), or a puzzle file, one per line (0 or . for a blank)")
    source.add_argument("--grid_size", type=int, choices=sorted(BOXES), help="evaluate on generated puzzles")
    parser.add_argument("--num_puzzles", type=int, default=1000)
    parser.add_argument("--givens", type=int, help="givens of generated puzzles (default 6 / 14 / 30)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of generated puzzles (training used others)")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", help="where to write the JSON and the chart (default: the model folder)")
    parser.add_argument("--document_boundary", default="auto", help="LM: auto, none, rows, wikitext or a regex")
    parser.add_argument("--block_size", type=int, default=512, help="LM: tokens per forward call")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    args = parser.parse_args(argv)

    if args.file and not Path(args.file).is_file():
        parser.error(f"--file: no such file: {args.file}")
    for flag in ("num_puzzles", "batch_size", "block_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    task = args.task or ("lm" if read_config(args.model).get("model_type") == "nested_lstm" else "sudoku")
    if task == "lm":
        if not args.file:
            parser.error("evaluating a language model needs --file")
        return evaluate_lm(args)
    return evaluate_sudoku(args, parser)


def evaluate_lm(args) -> dict:
    model = load_model(args.model, causal_lm=True, trust_remote_code=args.trust_remote_code)
    tokenizer = load_tokenizer(args.model, model, trust_remote_code=args.trust_remote_code)
    text = Path(args.file).read_text(encoding="utf-8")
    boundary = auto_boundary(args.file) if args.document_boundary == "auto" else args.document_boundary
    documents = rows_to_documents(text.splitlines(keepends=True), boundary)
    tokens, starts, chars_per_token = encode_corpus(documents, tokenizer)
    results = evaluate_stream(model, tokens, starts, args.block_size, progress=True,
                              characters_per_token=chars_per_token)
    results.update(file=str(args.file), documents=len(documents), characters=sum(len(d) for d in documents))
    print(f"{Path(args.file).name}: perplexity {results['perplexity']:.3f}, {results['bits_per_token']:.4f} bits "
          f"per token, {results['bits_per_character']:.4f} bits per character over {results['tokens']:,} tokens")
    print(json.dumps(finite_json(results)))
    return results


def evaluate_sudoku(args, parser) -> dict:
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    if args.file:
        try:
            data = solve_file(args.file)
        except ValueError as error:
            parser.error(str(error))
        name = Path(args.file).stem
    else:
        givens = args.givens or DEFAULT_GIVENS[args.grid_size]
        data = generate_puzzles(args.num_puzzles, BOXES[args.grid_size], givens, seed=args.seed)
        name = f"generated_{args.grid_size}x{args.grid_size}_{givens}givens"
    if data.size ** 2 != model.config.seq_len:
        parser.error(f"the model solves grids of {model.config.seq_len} cells, these have {data.size ** 2}")
    results = evaluate_model(model, data, batch_size=args.batch_size, progress=True)
    out = Path(args.output_dir or (args.model if Path(args.model).is_dir() else "."))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_{name}.json").write_text(json.dumps(finite_json(results), indent=2))
    bar_chart(results, name, out / f"eval_{name}.png")
    print(f"wrote {out / f'eval_{name}.json'} and {out / f'eval_{name}.png'}")
    print(json.dumps(finite_json(results)))
    return results


if __name__ == "__main__":
    run_cli(main)
