"""What dropping halted rows saves: a trained maze model reads generated mazes in their 8 rotations and reflections
to the fixed point (k steps unchanged, the Q head not asked), two ways side by side in one process, rounds
alternating:

- deep: every row runs to `--max_steps` (`solve(run_to_max=True)`) and the stops are read off the trace
  (`fixed_point_stop`), as the maze selection did before;
- halted rows leave: `solve(fixed_point_steps=k, halt_on_q_head=False)`, each row computed only up to its own stop.

Checks that both give the same stops and the same answers at every step up to them, and prints the ratio.

    python benchmarks/bench_halted_rows.py --model runs/t62/trm+progressive+parent+cosine --style carved --side 21
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from modeling_lstm_trm.loading import load_model
from modeling_lstm_trm.models.lstm_trm.modeling_lstmtrm import fixed_point_stop
from modeling_lstm_trm.tasks.maze.mazes import LOOPS, generate_mazes, long_path
from modeling_lstm_trm.tasks.task import dihedral


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained maze model's folder")
    parser.add_argument("--style", default="carved", help="a --maze_style kind (with loops)")
    parser.add_argument("--side", type=int, default=21)
    parser.add_argument("--mazes", type=int, default=6, help="mazes, each read in its 8 images")
    parser.add_argument("--max_steps", type=int, default=64)
    parser.add_argument("--fixed_point_steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    questions, _ = generate_mazes(args.mazes, args.side, long_path(args.side, args.style), seed=args.side,
                                  style=args.style, loops=LOOPS)
    images = np.concatenate([dihedral(questions, k) for k in range(8)])
    x = torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1))
    k, steps = args.fixed_point_steps, args.max_steps

    def deep():
        run = model.solve(x, max_steps=steps, return_trace=True, run_to_max=True)
        return run.trace, fixed_point_stop(run.trace, None, k)[1]

    def halted_rows_leave():
        run = model.solve(x, max_steps=steps, fixed_point_steps=k, halt_on_q_head=False, return_trace=True)
        return run.trace, run.halted_at

    arms = {"deep": deep, "halted rows leave": halted_rows_leave}
    times = {name: [] for name in arms}
    outputs = {}
    for _ in range(args.rounds):
        for name, arm in arms.items():
            start = time.perf_counter()
            outputs[name] = arm()
            times[name].append(time.perf_counter() - start)
    (deep_trace, deep_stop), (trace, stop) = outputs["deep"], outputs["halted rows leave"]
    same = torch.equal(deep_stop, stop) and all(torch.equal(deep_trace[:s, r], trace[:s, r])
                                                  for r, s in enumerate(stop.tolist()))
    seconds = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    ratio = seconds["deep"] / seconds["halted rows leave"]
    print(f"{args.mazes} {args.style} {args.side}x{args.side} mazes x 8 images, fixed point k={k}, at most {steps} "
          f"steps, {args.threads} thread(s): mean stop {stop.float().mean():.1f}; the same stops and answers: {same}")
    for name, value in seconds.items():
        print(f"  {name:18s} {value:7.1f} s")
    print(f"  halted rows leave: {ratio:.2f}x faster")
    print(json.dumps({"style": args.style, "side": args.side, "mazes": args.mazes, "same": same,
                      "mean_stop": round(float(stop.float().mean()), 2), "seconds": seconds, "ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
