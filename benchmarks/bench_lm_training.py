"""Nested LM training benchmarks (issue 3). Every figure is measured side by side in this one run.

    python benchmarks/bench_lm_training.py --only overhead       # StatefulTrainer vs a hand-written loop
    python benchmarks/bench_lm_training.py --only shakespeare    # four variants, 120 s each, validation loss
    python benchmarks/bench_lm_training.py --only wikitext       # four variants, 120 s each, test perplexity

overhead: tokens/s of the same model, batch, data and optimizer (MultiTimescaleOptimizer over AdamW, gradient
clipping, carried state) through `StatefulTrainer` and through a plain PyTorch loop, alternated, best of each.

shakespeare / wikitext: examples/train.py's own code path (`--task lm`) with an equal wall-clock budget and the
learning rate decayed by a cosine over that budget (`--schedule_by_time`), for (a) the state reset every batch,
(b) the state carried, (c) carried + the default nested levels [1, 16, 256], (d) (c) + surprise weighting.
Tiny Shakespeare: character-level, first 90% train, last 10% validation (loss in nats per character).
WikiText-2: word-level, trained on valid.txt, perplexity of test.txt read as one stream.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VARIANTS = {
    "(a) state reset every batch": ["--level_update_every", "1", "--carry_state", "false"],
    "(b) state carried": ["--level_update_every", "1"],
    "(c) carried + nested levels": [],
    "(d) carried + nested + surprise": ["--surprise_weighting", "true"],
}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ----- pipeline overhead -------------------------------------------------------------------------------------------

def overhead(steps: int, rounds: int) -> None:
    from transformers import TrainerCallback, TrainingArguments

    from modeling_lstm_trm import (
        BoundaryAwareCollator,
        MultiTimescaleOptimizer,
        NestedLSTMConfig,
        NestedLSTMForCausalLM,
        StatefulTrainer,
        TokenStreams,
    )
    from modeling_lstm_trm.tasks.text.streams import encode_corpus
    from modeling_lstm_trm.tokenization import build_char_tokenizer

    text = (DATA / "tinyshakespeare" / "input.txt").read_text()
    tokenizer = build_char_tokenizer([text])
    tokens, starts, _ = encode_corpus([text], tokenizer)
    batch, block, warm = 32, 128, 3
    data = TokenStreams(tokens, starts, batch, block)
    collate = BoundaryAwareCollator()

    def fresh():
        torch.manual_seed(0)
        model = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=len(tokenizer)))
        return model, MultiTimescaleOptimizer.from_model(model, torch.optim.AdamW, lr=1e-3, weight_decay=0.1)

    def hand_loop() -> float:
        model, optimizer = fresh()
        model.train()
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False, collate_fn=collate, drop_last=True)
        state, start = None, None
        for step, inputs in enumerate(loader):
            if step == warm:
                start = time.perf_counter()
            if step == warm + steps:
                break
            out = model(**inputs, cache=state)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            state = out.cache.detach()
        return steps * batch * block / (time.perf_counter() - start)

    def trainer_loop() -> float:
        model, optimizer = fresh()
        clock = {}

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == warm:
                    clock["start"] = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == warm + steps:
                    clock["end"] = time.perf_counter()

        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(output_dir=out, max_steps=warm + steps, per_device_train_batch_size=batch,
                                     train_sampling_strategy="sequential", dataloader_drop_last=True,
                                     report_to="none", save_strategy="no", logging_steps=10, disable_tqdm=True,
                                     max_grad_norm=1.0, lr_scheduler_type="constant")
            trainer = StatefulTrainer(model=model, args=args, train_dataset=data, data_collator=collate,
                                      optimizers=(optimizer, None), callbacks=[Clock()])
            trainer.train()
        return steps * batch * block / (clock["end"] - clock["start"])

    hand, through = [], []
    for r in range(rounds):
        hand.append(hand_loop())
        through.append(trainer_loop())
        print(f"round {r + 1}: hand-written {hand[-1]:,.0f} tokens/s, StatefulTrainer {through[-1]:,.0f} tokens/s",
              flush=True)
    print(f"\nPipeline overhead (batch {batch} x {block}, default nested config, {steps} steps, best of {rounds}): "
          f"hand-written {max(hand):,.0f} tokens/s, StatefulTrainer {max(through):,.0f} tokens/s, "
          f"ratio {max(through) / max(hand):.3f} (target >= 0.85)")


# ----- quality at equal time -----------------------------------------------------------------------------------------

def quality(corpus: str, seconds: float, extra: list[str], only: list[str] | None) -> None:
    train = load_example("train")
    evaluate = load_example("evaluate_model")
    minutes = seconds / 60
    rows = []
    for name, flags in VARIANTS.items():
        if only and not any(name.startswith(f"({o})") for o in only):
            continue
        with tempfile.TemporaryDirectory() as out:
            if corpus == "shakespeare":
                argv = ["--train_file", str(DATA / "tinyshakespeare" / "input.txt"), "--tokenizer", "char"]
            else:
                argv = ["--train_file", str(DATA / "wikitext-2-heldout" / "valid.txt"), "--tokenizer", "word",
                        "--validation_fraction", "0"]
            argv = ["--task", "lm", *argv, "--output_dir", out, "--max_minutes", str(minutes),
                    "--schedule_by_time", "true", "--max_steps", "1000000", "--save_strategy", "no",
                    "--eval_strategy", "no", "--disable_tqdm", "true", "--logging_steps", "50", *flags, *extra]
            print(f"\n== {corpus}: {name}: {' '.join(argv[2:])}", flush=True)
            started = time.monotonic()
            results = train.main(argv)
            row = {"variant": name, "steps": results["train_steps"], "train_minutes": results["train_minutes"]}
            if corpus == "shakespeare":
                row.update(validation_loss=results["eval_loss"], bits_per_character=results["eval_bits_per_character"])
            else:
                test = evaluate.main(["--model", out, "--file", str(DATA / "wikitext-2-heldout" / "test.txt")])
                row.update(test_perplexity=test["perplexity"], test_tokens=test["tokens"])
            row["wall_seconds"] = round(time.monotonic() - started, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = [k for k in rows[0] if k != "variant"]
    print(f"\n{corpus}, {seconds:.0f} s of training per variant\n")
    print("| variant | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for row in rows:
        print(f"| {row['variant']} | " + " | ".join(
            f"{row[k]:.4f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["overhead", "shakespeare", "wikitext"], required=True)
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget of each variant")
    parser.add_argument("--variants", nargs="*", help="subset of a b c d")
    parser.add_argument("--steps", type=int, default=30, help="overhead: timed steps per loop")
    parser.add_argument("--rounds", type=int, default=2, help="overhead: alternations")
    args, extra = parser.parse_known_args()  # anything else goes to examples/train.py
    if args.only == "overhead":
        overhead(args.steps, args.rounds)
    else:
        quality(args.only, args.seconds, extra, args.variants)


if __name__ == "__main__":
    main()
