"""Nested LM benchmarks (issue 2): training throughput against a plain PyTorch LSTM LM, and generation cost per
token against GPT-2's KV cache. Both sides run alternately in one process; ratios are what count.

    python benchmarks/bench_nested_lm.py            # both
    python benchmarks/bench_nested_lm.py --only train
"""

import argparse
import json
import time

import torch
from torch import nn

from modeling_lstm_trm import NestedLSTMConfig, NestedLSTMForCausalLM


class PlainLSTMLM(nn.Module):
    """The baseline: embedding -> nn.LSTM -> linear head, tied, nothing else."""

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, x, y):
        out, _ = self.lstm(self.embed(x))
        return nn.functional.cross_entropy(self.head(out).flatten(0, 1), y.flatten())


def train_throughput(batch=32, seq=128, hidden=256, vocab=65, rounds=7, steps=4):
    """Median step time of each variant, the variants taking turns so that machine noise hits all alike."""
    torch.manual_seed(0)
    variants = {
        "plain nn.LSTM LM": PlainLSTMLM(vocab, hidden),
        "nested, levels [1] (machinery only)": NestedLSTMForCausalLM(
            NestedLSTMConfig(vocab_size=vocab, hidden_size=hidden, level_update_every=[1])),
        "nested, levels [1,16,256] (default)": NestedLSTMForCausalLM(
            NestedLSTMConfig(vocab_size=vocab, hidden_size=hidden, level_update_every=[1, 16, 256])),
        "nested, levels [1,16,256], intermediate 16": NestedLSTMForCausalLM(
            NestedLSTMConfig(vocab_size=vocab, hidden_size=hidden, level_update_every=[1, 16, 256],
                             intermediate_size=16)),
    }
    x = torch.randint(0, vocab, (batch, seq))
    y = torch.randint(0, vocab, (batch, seq))

    def make_step(model):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        state = None

        def step():
            nonlocal state
            if isinstance(model, PlainLSTMLM):
                loss = model(x, y)
            else:
                out = model(x, cache=state, shift_labels=y)
                loss, state = out.loss, out.cache.detach()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    steps_by_name = {name: make_step(model) for name, model in variants.items()}
    times = {name: [] for name in variants}
    for step in steps_by_name.values():  # warm-up
        step()
        step()
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    tokens_per_s = {name: batch * seq / sorted(t)[len(t) // 2] for name, t in times.items()}
    plain = tokens_per_s["plain nn.LSTM LM"]
    print(f"training throughput, batch {batch} x {seq}, hidden {hidden}, vocab {vocab}, forward+backward+AdamW")
    for name, value in tokens_per_s.items():
        print(f"  {name:<45} {value:>9,.0f} tokens/s   ratio {value / plain:.3f}")
    ratio = tokens_per_s["nested, levels [1,16,256] (default)"] / plain
    print(f"  default [1,16,256] vs plain: {ratio:.3f} (target >= 0.90)")
    return {"train_tokens_per_s": tokens_per_s, "train_ratio": ratio}


@torch.no_grad()
def ms_per_new_token(model, prompt_len, vocab, new_tokens=128, repeats=5):
    prompt = torch.randint(0, vocab, (1, prompt_len))
    per_token = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.generate(prompt, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(prompt, max_new_tokens=new_tokens + 1, min_new_tokens=new_tokens + 1, do_sample=False)
        total = time.perf_counter() - start
        per_token.append((total - prefill) / new_tokens * 1000)
    return sorted(per_token)[len(per_token) // 2]


def generation_cost(vocab=65, prompts=(128, 1024, 4096)):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    nested = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=vocab, hidden_size=256)).eval()
    n_nested = sum(p.numel() for p in nested.parameters())
    gpt2_config = GPT2Config(vocab_size=vocab, n_positions=max(prompts) + 128, n_embd=128, n_layer=3, n_head=4,
                             bos_token_id=0, eos_token_id=0)
    gpt2 = GPT2LMHeadModel(gpt2_config).eval()
    n_gpt2 = sum(p.numel() for p in gpt2.parameters()) - gpt2.transformer.wpe.weight.numel()
    rows = {}
    for length in prompts:
        rows[length] = (ms_per_new_token(nested, length, vocab), ms_per_new_token(gpt2, length, vocab))
    print(f"\ngeneration ms/new token (greedy, batch 1; params nested {n_nested/1e6:.2f}M, "
          f"GPT-2 {n_gpt2/1e6:.2f}M without position table)")
    print(f"{'prompt':>8} {'nested':>10} {'GPT-2':>10}")
    for length, (a, b) in rows.items():
        print(f"{length:>8} {a:>10.3f} {b:>10.3f}")
    first, last = prompts[0], prompts[-1]
    ratio_nested = rows[last][0] / rows[first][0]
    ratio_gpt2 = rows[last][1] / rows[first][1]
    print(f"{last}/{first} ratio: nested {ratio_nested:.2f} (target <= 1.2), GPT-2 {ratio_gpt2:.2f}")
    return {"gen_ms": {str(k): v for k, v in rows.items()}, "gen_ratio_nested": ratio_nested,
            "gen_ratio_gpt2": ratio_gpt2}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["train", "generate"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    if args.only in (None, "train"):
        results.update(train_throughput())
    if args.only in (None, "generate"):
        results.update(generation_cost())
    print(json.dumps(results))
