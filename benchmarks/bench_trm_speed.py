"""Training speed at TRM's exact Sudoku-MLP shapes (9x9, hidden 512, H=3 / L=6, 2 layers, token MLP, 16
puzzle-embedding positions, float32), side by side in one run: TRM's own code (a checkout of
SamsungSAILMontreal/TinyRecursiveModels, run in a process of its own), our `recurrence="trm"` with the converter's
settings (the same network, tests/test_trm_parity.py) and LSTM-TRM at the same shapes, each eager and compiled.

    git clone https://github.com/SamsungSAILMontreal/TinyRecursiveModels /tmp/trm   # needs einops and pydantic
    python benchmarks/bench_trm_speed.py --trm_repo /tmp/trm
    python benchmarks/bench_trm_speed.py --trm_repo /tmp/trm --arms trm-code ours-trm   # a few arms

A step is one supervision step of the batch (forward with its H_cycles recursions, the last with gradients; the loss;
backward; an AdamW step: TRM trains with AdamATan2, a compiled extension of its own, so both sides use AdamW here and
the networks are what is compared). Each arm runs in its own process, one after the other, `--rounds` rounds of
`--steps` steps after warming up (and compiling); the median round counts. TRM's code is compiled as its pretrain.py
does (`torch.compile(model)`); ours through `--compile_recursion` (the recursion's two updates).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ARMS = ("trm-code", "trm-code-compiled", "ours-trm", "ours-trm-compiled", "lstm-trm", "lstm-trm-compiled")
TRM_SUDOKU_MLP = dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, puzzle_emb_ndim=512, H_cycles=3,
                      L_cycles=6, H_layers=0, L_layers=2, hidden_size=512, expansion=4, num_heads=8,
                      pos_encodings="none", mlp_t=True, puzzle_emb_len=16, halt_max_steps=16,
                      halt_exploration_prob=0.1, forward_dtype="float32", no_ACT_continue=True)


def measure(step, steps: int, rounds: int) -> float:
    """Median seconds per step over `rounds` rounds of `steps` steps."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - start) / steps)
    return sorted(times)[len(times) // 2]


def trm_code_step(trm_repo: str, batch: int, compiled: bool):
    """One training step of TRM's own ACTLossHead(TinyRecursiveReasoningModel_ACTV1) at its Sudoku-MLP shapes."""
    import torch

    sys.path.insert(0, trm_repo)
    from models.losses import ACTLossHead
    from models.recursive_reasoning.trm import TinyRecursiveReasoningModel_ACTV1

    torch.manual_seed(0)
    model = ACTLossHead(TinyRecursiveReasoningModel_ACTV1(dict(TRM_SUDOKU_MLP, batch_size=batch)),
                        "stablemax_cross_entropy").train()
    parameters = sum(p.numel() for p in model.parameters())
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = {"inputs": torch.randint(1, 11, (batch, 81)), "labels": torch.randint(2, 11, (batch, 81)),
            "puzzle_identifiers": torch.zeros(batch, dtype=torch.int32)}
    state = {"carry": model.initial_carry(data)}

    def step():
        state["carry"], loss, _, _, _ = forward(carry=state["carry"], batch=data, return_keys=[])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, parameters


def our_step(recurrence: str, batch: int, compiled: bool):
    """One training step of our model at the same shapes (TRM's conventions, as the converter sets them)."""
    import torch

    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.models.lstm_trm.convert_trm_original_to_hf import config_from_trm
    from modeling_lstm_trm.training.compiling import compile_recursion

    config = config_from_trm(dict(TRM_SUDOKU_MLP, batch_size=batch))
    config.recurrence = recurrence
    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(config).train()
    if compiled:
        compile_recursion(model, "default")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randint(1, 11, (batch, 81)), torch.randint(2, 11, (batch, 81))
    state = {"carry": None}

    def step():
        out = model(x, labels=y, cache=state["carry"])
        state["carry"] = out.cache
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in model.parameters())


def run_arm(args) -> dict:
    """In this process: one arm, warmed up (compiled), then timed."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    compiled = args.arm.endswith("-compiled")
    if args.arm.startswith("trm-code"):
        step, parameters = trm_code_step(args.trm_repo, args.batch, compiled)
    else:
        step, parameters = our_step("lstm" if args.arm.startswith("lstm") else "trm", args.batch, compiled)
    start = time.perf_counter()
    for _ in range(2):
        step()
    warmup = time.perf_counter() - start
    seconds = measure(step, args.steps, args.rounds)
    return {"arm": args.arm, "batch": args.batch, "threads": torch.get_num_threads(), "parameters": parameters,
            "warmup_s": round(warmup, 1), "s_per_step": round(seconds, 4),
            "puzzle_steps_per_s": round(args.batch / seconds, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trm_repo", help="a checkout of TinyRecursiveModels (without it, TRM's arms are left out)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's, all cores)")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # the child process's one arm
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args)), flush=True)
        return
    arms = [arm for arm in args.arms if args.trm_repo or not arm.startswith("trm-code")]
    results = []
    for arm in arms:
        command = [sys.executable, __file__, "--arm", arm, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--rounds", str(args.rounds)] + (["--trm_repo", args.trm_repo] if args.trm_repo else []) + \
            (["--threads", str(args.threads)] if args.threads else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{arm}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}",
                  flush=True)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{arm:20s} {result['puzzle_steps_per_s']:7.3f} puzzle-steps/s ({result['s_per_step']:.2f} s a step of "
              f"{args.batch}; {result['parameters'] / 1e6:.2f}M parameters; warm-up {result['warmup_s']} s)",
              flush=True)
    rate = {r["arm"]: r["puzzle_steps_per_s"] for r in results}
    best_trm = max((rate[a] for a in rate if a.startswith("trm-code")), default=None)
    if best_trm:
        for arm in rate:
            print(f"{arm:20s} {rate[arm] / best_trm:.3f}x TRM's code at its best setting here")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
