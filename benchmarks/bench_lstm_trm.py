"""LSTM-TRM benchmark (issue 4): training supervision steps per second, lstm recurrence vs TRM's reference
recurrence at equal hidden size. Each step is one forward (T recursions, the last with gradients), backward and
AdamW step. The two recurrences take turns in one process; the ratio is what counts.

    python benchmarks/bench_lstm_trm.py                    # CPU: small 6x6 setting and the 9x9 design size
    python benchmarks/bench_lstm_trm.py --device cuda      # the same on a GPU
    python benchmarks/bench_lstm_trm.py --only 9x9 --dtypes bfloat16   # the design size only

Puzzle-steps per second = supervision steps per second x batch (each row of the batch takes one supervision step).
"""

import argparse
import json
import time

import torch

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving

SETTINGS = {
    "6x6 CPU preset size (hidden 64, T=3, n=4, batch 64)": dict(
        seq_len=36, vocab_size=7, hidden_size=64, T_cycles=3, n_cycles=4, puzzle_emb_ndim=0, batch=64),
    "9x9 design size (hidden 512, T=3, n=6, batch 16)": dict(
        seq_len=81, vocab_size=10, hidden_size=512, T_cycles=3, n_cycles=6, puzzle_emb_ndim=512, batch=16),
    "9x9 at TRM's exact shapes (its Sudoku-MLP network: 256-multiple widths, 16 prefix positions, batch 16)": dict(
        seq_len=81, vocab_size=11, hidden_size=512, T_cycles=3, n_cycles=6, puzzle_emb_ndim=512, batch=16,
        mlp_multiple=256, puzzle_emb_len=16, mlp_mixer_norm="positions", q_head_input="first"),
}


def steps_per_second(settings, dtype, device, rounds=5, steps=3):
    settings = dict(settings)
    batch = settings.pop("batch")
    if device == "cuda":
        batch *= 16
    runners = {}
    for recurrence in ("lstm", "trm"):
        torch.manual_seed(0)
        config = LSTMTRMConfig(**settings, recurrence=recurrence, forward_dtype=dtype)
        model = LSTMTRMForPuzzleSolving(config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randint(0, config.vocab_size, (batch, config.seq_len), device=device)
        y = torch.randint(1, config.vocab_size, (batch, config.seq_len), device=device)
        state = {"carry": None}

        def step(model=model, optimizer=optimizer, x=x, y=y, state=state):
            out = model(x, labels=y, cache=state["carry"])
            state["carry"] = out.cache
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        runners[recurrence] = (step, sum(p.numel() for p in model.parameters()))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = {name: [] for name in runners}
    for step, _ in runners.values():
        step()
        step()
    for _ in range(rounds):
        for name, (step, _) in runners.items():
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            times[name].append((time.perf_counter() - start) / steps)
    rate = {name: 1.0 / sorted(t)[len(t) // 2] for name, t in times.items()}
    return rate, {name: params for name, (_, params) in runners.items()}, batch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--only", help="run the settings whose name contains this (e.g. 9x9)")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    results = []
    for setting, values in SETTINGS.items():
        if args.only and args.only not in setting:
            continue
        for dtype in args.dtypes:
            rate, params, batch = steps_per_second(values, dtype, args.device)
            ratio = rate["lstm"] / rate["trm"]
            print(f"{setting}, batch {batch}, {dtype}: lstm {rate['lstm']:.2f} steps/s = "
                  f"{rate['lstm'] * batch:.1f} puzzle-steps/s ({params['lstm'] / 1e6:.2f}M), trm {rate['trm']:.2f} "
                  f"steps/s = {rate['trm'] * batch:.1f} puzzle-steps/s ({params['trm'] / 1e6:.2f}M), "
                  f"lstm/trm {ratio:.3f}", flush=True)
            results.append({"setting": setting, "dtype": dtype, "batch": batch, "lstm_steps_per_s": rate["lstm"],
                            "trm_steps_per_s": rate["trm"], "lstm_puzzle_steps_per_s": rate["lstm"] * batch,
                            "trm_puzzle_steps_per_s": rate["trm"] * batch, "ratio": ratio})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
