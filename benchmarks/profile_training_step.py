"""Where one training step's time goes: the main job's preset (6x6 Sudoku, hidden 64, T=3, n=4, batch 64) and TRM's
Sudoku-MLP shapes (9x9, hidden 512, T=3, n=6, TRM's widths, batch 16), in float32 on the CPU.

    python benchmarks/profile_training_step.py                 # both settings, a table per setting
    python benchmarks/profile_training_step.py --only main     # one of them
    python benchmarks/profile_training_step.py --compile       # the same with the compiled recursion

Each setting is timed four ways, side by side in one process, each the median of a few rounds: the data (a batch
drawn and collated as the Trainer's DataLoader does), the forward with its T recursions (the T - 1 without gradients
apart), the backward, and the optimizer step; a step is their sum. `torch.profiler` then lists the operators that
take the most time.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.tasks.sudoku.puzzles import BOXES, SudokuDataset, generate_puzzles
from modeling_lstm_trm.training.compiling import compile_recursion

SETTINGS = {
    "main": dict(size=6, batch=64, config=dict(hidden_size=64, num_layers=2, T_cycles=3, n_cycles=4,
                                               halt_max_steps=8, puzzle_emb_ndim=0)),
    "trm": dict(size=9, batch=16, config=dict(hidden_size=512, num_layers=2, T_cycles=3, n_cycles=6,
                                              halt_max_steps=16, puzzle_emb_ndim=512, mlp_multiple=256,
                                              puzzle_emb_len=16, mlp_mixer_norm="positions", q_head_input="first",
                                              recurrence="trm")),
}


def median_seconds(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def profile(name: str, rounds: int, compile_mode: str | None) -> dict:
    setting = SETTINGS[name]
    size, batch = setting["size"], setting["batch"]
    torch.manual_seed(0)
    config = LSTMTRMConfig(seq_len=size * size, vocab_size=size + 1, forward_dtype="float32", **setting["config"])
    model = LSTMTRMForPuzzleSolving(config).train()
    if compile_mode:
        compile_recursion(model, compile_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = SudokuDataset(generate_puzzles(200, BOXES[size], seed=0), length=10_000, seed=0)
    loader = iter(torch.utils.data.DataLoader(data, batch_size=batch, collate_fn=torch.utils.data.default_collate))
    first = next(loader)
    x, y = first["input_ids"], first["labels"]
    carry = {"state": None}

    def forward():
        out = model(x, labels=y, cache=carry["state"])
        carry["state"] = out.cache
        return out

    for _ in range(3):  # warm up (and compile)
        out = forward()
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    parts = {"data (batch drawn and collated)": median_seconds(lambda: next(loader), rounds)}
    with torch.no_grad():
        h, c = carry["state"].h, carry["state"].c
        embedded = model.model.embed(x, None)
        parts["forward: the T-1 recursions without gradients"] = median_seconds(
            lambda: model.model.recurse(embedded, h, c, recursions=config.T_cycles - 1), rounds)
    parts["forward: whole supervision step"] = median_seconds(forward, rounds)

    def backward():
        out = forward()
        out.loss.backward()
        model.zero_grad(set_to_none=True)
    parts["backward (forward + backward, less forward)"] = median_seconds(backward, rounds) - \
        parts["forward: whole supervision step"]
    out = forward()
    out.loss.backward()
    parts["optimizer step (AdamW)"] = median_seconds(optimizer.step, rounds)
    optimizer.zero_grad(set_to_none=True)
    step = sum(v for k, v in parts.items() if not k.startswith("forward: the T-1"))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            out = forward()
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return {"setting": name, "batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads(), "compile": compile_mode, "parts_ms": {k: round(v * 1e3, 2)
                                                                                    for k, v in parts.items()},
            "step_ms": round(step * 1e3, 2), "supervision_steps_per_s": round(1 / step, 2), "table": table}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SETTINGS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compile", nargs="?", const="default", help="compile the recursion (a torch.compile mode)")
    args = parser.parse_args()
    results = []
    for name in [args.only] if args.only else list(SETTINGS):
        result = profile(name, args.rounds, args.compile)
        print(f"\n== {name}: batch {result['batch']}, {result['parameters'] / 1e6:.2f}M parameters, "
              f"{result['threads']} threads, compile {result['compile']}: {result['step_ms']} ms per step "
              f"({result['supervision_steps_per_s']} supervision steps/s)")
        for part, ms in result["parts_ms"].items():
            print(f"  {part:55s} {ms:9.2f} ms")
        print(result.pop("table"))
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
