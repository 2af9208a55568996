"""The nested LM learning while it reads (issue 14): static reading against online updates, same trained model for
every row, all measured in this one run.

    python benchmarks/bench_online_learning.py --out runs/online      # trains two small models first (2 min each)
    python benchmarks/bench_online_learning.py --wikitext_model D1 --shakespeare_model D2

Rows: (a) static; (b) dynamic evaluation of all parameters; (c) online nested: the slow levels on their online clocks;
(d) (c) gated by surprise; (e) (c) plus the LSTM level. Each reads the whole stream in chunks of --block_size tokens
(scored, then learned from); reading speed is tokens per second against (a). WikiText-2: word level, trained on
valid.txt, test.txt read as one stream (reset at articles). Tiny Shakespeare: character level, trained on the first
90%, the last 10% read. The shift probe: the Shakespeare model reads WikiText-2 test text, character by character,
loss per 10k characters for (a)-(d), drawn in --out/online_shift.png. Learning rates are fixed in advance (Adam,
--lr_all for all parameters, --lr_levels for the level rows), not tuned on the test text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_lm_training import load_example  # noqa: E402  (one loader of example scripts for the benchmarks)


def variants(args) -> dict:
    from modeling_lstm_trm.training.online import OnlineSettings

    common = dict(optimizer="adam", periods=args.periods)
    return {
        "(a) static": None,
        "(b) dynamic evaluation, all parameters": OnlineSettings(levels="all", lr=args.lr_all, optimizer="adam"),
        "(c) online nested: slow levels": OnlineSettings(levels="slow", lr=args.lr_levels, **common),
        "(d) (c) gated by surprise": OnlineSettings(levels="slow", lr=args.lr_levels, surprise="gate", **common),
        "(e) (c) plus the LSTM level": OnlineSettings(levels="1,2,3", lr=args.lr_levels, **common),
    }


def train(out: Path, name: str, argv: list[str]) -> Path:
    folder = out / name
    if not (folder / "model.safetensors").is_file():
        load_example("train").main(["--task", "lm", *argv, "--output_dir", str(folder), "--max_minutes",
                                    str(2.0), "--schedule_by_time", "true", "--max_steps", "1000000",
                                    "--disable_tqdm", "true", "--overwrite_output_dir"])
    return folder


def read_stream(folder: Path, path: Path, boundary: str, args, limit_chars: int | None = None) -> list[dict]:
    from modeling_lstm_trm.loading import load_model, load_tokenizer
    from modeling_lstm_trm.tasks.text.streams import encode_corpus, evaluate_stream, rows_to_documents
    from modeling_lstm_trm.training.online import OnlineLearner

    model = load_model(str(folder), causal_lm=True)
    tokenizer = load_tokenizer(str(folder), model)
    text = path.read_text(encoding="utf-8")
    if limit_chars:
        text = text[:limit_chars]
    documents = rows_to_documents(text.splitlines(keepends=True), boundary)
    tokens, starts, chars_per_token = encode_corpus(documents, tokenizer)
    rows = []
    for name, settings in variants(args).items():
        learner = OnlineLearner(model, settings) if settings else None
        result = evaluate_stream(model, tokens, starts, args.block_size, characters_per_token=chars_per_token,
                                 online=learner, return_token_losses=True, progress=True)
        rows.append({"variant": name, "loss": result["loss"], "perplexity": result["perplexity"],
                     "tokens_per_second": result["tokens_per_second"], "token_losses": result.pop("token_losses"),
                     "chars_per_token": chars_per_token})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "token_losses"}), flush=True)
    return rows


def table(title: str, rows: list[dict]) -> None:
    static = rows[0]
    print(f"\n{title}\n| variant | loss (nats/token) | perplexity | vs static | tokens/s | reading time vs static |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['loss']:.4f} | {r['perplexity']:.2f} | "
              f"{100 * (r['perplexity'] / static['perplexity'] - 1):+.1f}% | {r['tokens_per_second']:.0f} | "
              f"{static['tokens_per_second'] / r['tokens_per_second']:.2f}x |")


def plot_shift(rows: list[dict], path: Path, window: int = 10_000) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for r in rows[:4]:
        losses = r["token_losses"]
        per_window = [losses[i:i + window].mean() for i in range(0, len(losses) - window + 1, window)]
        ax.plot(np.arange(1, len(per_window) + 1) * window / 1000, per_window, "o-", ms=3, label=r["variant"])
    ax.set_xlabel("characters of WikiText-2 read (thousands)")
    ax.set_ylabel("loss per 10k characters (nats/char)")
    ax.set_title("A Tiny Shakespeare model reading WikiText-2: how fast each reader adapts", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/online")
    parser.add_argument("--wikitext_model")
    parser.add_argument("--shakespeare_model")
    parser.add_argument("--block_size", type=int, default=64)
    parser.add_argument("--lr_all", type=float, default=3e-4)
    parser.add_argument("--lr_levels", type=float, default=1e-3)
    parser.add_argument("--periods", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--shift_chars", type=int, default=200_000, help="WikiText-2 characters the probe reads")
    parser.add_argument("--only", choices=["wikitext", "shakespeare", "shift"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wikitext, shakespeare = DATA / "wikitext-2-heldout", DATA / "tinyshakespeare" / "input.txt"
    if args.only in (None, "wikitext"):
        folder = Path(args.wikitext_model) if args.wikitext_model else train(out, "wikitext", [
            "--train_file", str(wikitext / "valid.txt"), "--tokenizer", "word", "--validation_fraction", "0"])
        table("WikiText-2 test, word level", read_stream(folder, wikitext / "test.txt", "wikitext", args))
    if args.only in (None, "shakespeare", "shift"):
        folder = Path(args.shakespeare_model) if args.shakespeare_model else train(out, "shakespeare", [
            "--train_file", str(shakespeare), "--tokenizer", "char"])
        if args.only != "shift":
            validation = out / "shakespeare_validation.txt"
            text = shakespeare.read_text(encoding="utf-8")
            validation.write_text(text[int(len(text) * 0.9):], encoding="utf-8")
            table("Tiny Shakespeare validation (last 10%), character level",
                  read_stream(folder, validation, "none", args))
        if args.only in (None, "shift"):
            rows = read_stream(folder, wikitext / "test.txt", "none", args, limit_chars=args.shift_chars)
            table(f"Shift probe: the Shakespeare model reading {args.shift_chars:,} characters of WikiText-2", rows)
            plot_shift(rows, out / "online_shift.png")


if __name__ == "__main__":
    main()
