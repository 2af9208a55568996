"""Solving throughput on 30x30 mazes (what bounds every maze extrapolation figure): a maze model's size (conv mixer,
hidden 64, T=2, n=2), `solve` to a fixed depth, side by side in one process, rounds alternating between the arms:

- eager, the conv mixer as it was before the speed work (the grid transposed and copied in and out of every conv);
- eager, the mixer as it is (the (batch, cells, channels) layout read as a channels-last grid: no copies);
- the recursion compiled (`--compile_recursion`).

    python benchmarks/bench_solve_speed.py                 # 50 mazes, 16 steps, 5 rounds
    python benchmarks/bench_solve_speed.py --side 59 --mazes 20

Throughput is maze-steps per second (mazes x supervision steps / seconds); the answers of every arm are checked equal.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.models.lstm_trm.modeling_lstmtrm import LSTMTRMLocalMixer
from modeling_lstm_trm.training.compiling import compile_recursion


def mixer_as_it_was(self, x: torch.Tensor) -> torch.Tensor:
    """LSTMTRMLocalMixer.forward before the speed work: transposes (copies) in and out of the convolution."""
    batch, length, width = x.shape
    side = math.isqrt(length - self.prefix)
    grid = x[:, self.prefix:].transpose(1, 2).reshape(batch, width, side, side)
    mixed = self.conv(grid).reshape(batch, width, side * side).transpose(1, 2)
    return F.pad(mixed, (0, 0, self.prefix, 0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=30)
    parser.add_argument("--mazes", type=int, default=50)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = LSTMTRMConfig(seq_len=81, vocab_size=6, forward_dtype="float32", hidden_size=64, num_layers=2,
                           T_cycles=2, n_cycles=2, halt_max_steps=8, puzzle_emb_ndim=0, mixer="conv")
    arms = {}
    for name in ("eager, mixer as it was", "eager", "compiled"):
        model = LSTMTRMForPuzzleSolving(config).eval()
        if arms:
            model.load_state_dict(next(iter(arms.values())).state_dict())
        if name == "compiled":
            compile_recursion(model, "default")
        arms[name] = model
    x = torch.randint(1, 6, (args.mazes, args.side * args.side), generator=torch.Generator().manual_seed(1))
    original = LSTMTRMLocalMixer.forward

    def solve(name):
        LSTMTRMLocalMixer.forward = mixer_as_it_was if name == "eager, mixer as it was" else original
        try:
            return arms[name].solve(x, max_steps=args.steps, run_to_max=True)
        finally:
            LSTMTRMLocalMixer.forward = original

    answers = {name: solve(name).final_predictions for name in arms}  # also warms up (and compiles)
    same = all(torch.equal(answers[name], answers["eager"]) for name in arms)
    times = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name in arms:
            start = time.perf_counter()
            solve(name)
            times[name].append(time.perf_counter() - start)
    rate = {name: args.mazes * args.steps / sorted(t)[len(t) // 2] for name, t in times.items()}
    base = rate["eager, mixer as it was"]
    print(f"{args.mazes} mazes of {args.side}x{args.side}, {args.steps} supervision steps, "
          f"{torch.get_num_threads()} threads; the same answers in every arm: {same}")
    for name, value in rate.items():
        print(f"  {name:25s} {value:7.1f} maze-steps/s  ({value / base:.2f}x the eager solve as it was)")
    print(json.dumps({"side": args.side, "mazes": args.mazes, "steps": args.steps, "same_answers": same,
                      "maze_steps_per_s": {k: round(v, 2) for k, v in rate.items()}}))


if __name__ == "__main__":
    main()
