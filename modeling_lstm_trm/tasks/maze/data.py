"""The maze task's training and held-out mazes: TRM's Maze-Hard (a Hub dataset or a folder with train.csv / test.csv,
two CSV files, a TRM prebuilt folder), or generated (one side, or several sides on one canvas), with a held-out set
that no symmetry of a training maze can reproduce."""

from __future__ import annotations

import numpy as np

from ..task import Splits
from .arguments import MazeArguments, scaled_path_length
from .maze_hard import MazeSet, load_csv_splits, load_trm_folder
from .mazes import LOOPS, canonical_form, generate_mazes


def load_splits(args: MazeArguments, seed: int, is_main: bool) -> Splits:
    """Training and held-out mazes from the dataset flags, or generated (held-out mazes are no symmetric image of a
    training maze)."""
    if args.data_dir:
        train, test = (load_trm_folder(args.data_dir, split) for split in ("train", "test"))
    elif args.uses_dataset():
        files, hub = args.csv_files()
        splits = load_csv_splits(files, hub)
        train, test = splits["train"], splits["test"]
    elif args.maze_sizes:
        return several_sides(args, seed, is_main)
    else:
        if is_main:
            print(f"Generating {args.train_mazes} training and {args.eval_mazes} held-out {args.maze_size}x"
                  f"{args.maze_size} mazes (unique shortest path of >= {args.min_path_length} steps)...", flush=True)
        train, test = generated_split(args.train_mazes, args.eval_mazes, args.maze_size, args.min_path_length, seed,
                                      args.maze_style, loops_of(args.maze_loops))
    source = (args.source_name() if args.uses_dataset() else
              f"generated {style_name(args.maze_style, args.maze_loops)}, {args.maze_size}x{args.maze_size}, "
              f"shortest path >= {args.min_path_length} steps")
    if is_main:
        print(f"Data: {len(train)} training and {len(test)} held-out {test.size}x{test.size} mazes ({source})",
              flush=True)
    info = {"source": source, "maze_size": train.size, "size": train.size}
    if args.canvas_size:
        if args.canvas_size < train.size:
            raise ValueError(f"--canvas_size {args.canvas_size} is smaller than the {train.size}x{train.size} mazes")
        train, test = train.on_canvas(args.canvas_size), test.on_canvas(args.canvas_size)
        info["canvas_size"] = args.canvas_size
    return Splits(train, test, info)


def generated_name(args) -> str:
    return args.maze_style + ("" if args.maze_loops is None else f"_loops{args.maze_loops:g}")


def loops_of(loops: float | None) -> float:
    return LOOPS if loops is None else loops


def style_name(style: str, loops: float | None) -> str:
    """How figures and results name a generated distribution: "carved", "carved (no loops)", "scattered"."""
    if style != "carved" or loops is None or loops == LOOPS:
        return style
    return "carved (no loops)" if loops == 0 else f"carved ({loops:g} loops)"


def generated_split(train_mazes: int, eval_mazes: int, side: int, min_path_length: int,
                    seed: int, style: str = "carved", loops: float = LOOPS) -> tuple[MazeSet, MazeSet]:
    """Generated training and held-out mazes of one side; no held-out maze is a symmetric image of a training one."""
    train = MazeSet(*generate_mazes(train_mazes, side, min_path_length, seed=seed, style=style, loops=loops))
    seen = {canonical_form(q) for q in train.questions}
    test = MazeSet(*generate_mazes(eval_mazes, side, min_path_length, seed=seed + 1_000_003, exclude=seen,
                                   style=style, loops=loops))
    return train, test


def several_sides(args: MazeArguments, seed: int, is_main: bool) -> Splits:
    """Generated mazes of every side in --maze_sizes, shared out evenly, each on the same canvas (walls around a maze
    leave it the same maze), the held-out ones no symmetric image of a training maze of their side."""
    sides = sorted(args.maze_sizes)
    canvas = max(args.canvas_size or 0, sides[-1])
    parts = {"train": [], "test": []}
    paths = {}
    for k, side in enumerate(sides):
        paths[side] = scaled_path_length(args.min_path_length, side, args.maze_size)
        count, held = -(-args.train_mazes // len(sides)), -(-args.eval_mazes // len(sides))
        if is_main:
            print(f"Generating {count} training and {held} held-out {side}x{side} mazes (shortest path >= "
                  f"{paths[side]} steps)...", flush=True)
        train, test = generated_split(count, held, side, paths[side], seed + 7919 * k, args.maze_style,
                                      loops_of(args.maze_loops))
        parts["train"].append(train.on_canvas(canvas))
        parts["test"].append(test.on_canvas(canvas))
    train, test = (MazeSet(*(np.concatenate([getattr(m, name) for m in parts[split]])
                             for name in ("questions", "answers"))) for split in ("train", "test"))
    source = (f"generated {style_name(args.maze_style, args.maze_loops)}, sides {', '.join(map(str, sides))} on a "
              f"{canvas}x{canvas} canvas, shortest path >= "
              f"{', '.join(str(paths[side]) for side in sides)} steps")
    if is_main:
        print(f"Data: {len(train)} training and {len(test)} held-out mazes ({source})", flush=True)
    return Splits(train, test, {"source": source, "maze_size": canvas, "size": canvas, "maze_sizes": sides,
                                "canvas_size": canvas})
