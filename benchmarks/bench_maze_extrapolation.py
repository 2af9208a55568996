"""Think longer, solve larger (issues 27 and 34): LSTM-TRM trained on several small maze sides on a CPU, then read on
larger mazes and other kinds of maze at several test-time depths.

Every arm trains at the same time as the others, one process and one thread each (equal CPU time), with the maze CPU
preset on `--maze_sizes` (conv mixer: it reads any side as it is). An arm is a name and its extra flags, e.g.
`lstm` (the preset), `lstm+progressive` (`--progressive_steps 8`), `trm` (`--recurrence trm`, its hidden size
matched to the lstm arm's parameter count), `+distance` (`--distance_target`), `+given` (`--tie_break given`),
`+cosine` (`--schedule_by_time true`: the learning rate decays over the minutes), `+long` (16 supervision steps
and up to 16 progressive ones, twice the preset's), `+wide` (hidden 96 instead of 64), `+data` (40,000 training
mazes instead of 4,000), `+far` (shortest paths of at least 16 steps at 9x9, scaled by the area: 44 at 15x15, twice the
preset's, so the waves run farther), `+front4` / `+front8` (`--distance_front_speed 4` / `8`: each cell's distance is
asked only from the step a wave from S moving 4 / 8 cells a step reaches it), `+parent` (`--parent_target`: the second
head learns each cell's parent, the neighbour the wave from S reached it from, instead of its distance); flags after
`--` go to every arm
(e.g. `--maze_style mixed --seed 1`). Then each model solves generated mazes of every set (`--sets STYLE:SIDE:COUNT`,
or every --styles at every --sizes; a kind's shortest-path floor is `mazes.long_path`), `max(--depths)` supervision
steps, read after each depth in --depths and at the stopping rules (`--fixed_point_steps`: where the answer held k
steps or the Q head halted, read off the same run, `modeling_lstmtrm.fixed_point_stop`). Scored by valid shortest
path (exact match over the mazes whose shortest path is unique beside it). Styles: `examples/train.py`'s
--maze_style kinds, and no-loops (carved with no wall knocked down: perfect mazes). `--maze_loops` sets the training
mazes' loops. Writes the rows (`--results_name`, default `extrapolation.json`), prints the table and draws a heat map
(valid shortest path by set and depth, one panel per arm); `--phase figure` redraws both from several results files,
`--phase wave` draws one Maze-Hard-shaped maze's path and distance head step by step, `--phase distance` scores the
distance or parent head by each cell's steps from S (where the wave goes wrong; the parent head's wrong pointers also
on and off the band of shortest paths, and how many of them point towards G), `--phase kinds` counts the kinds of
maze each training path floor keeps in the mixed draw, `--phase symmetries` reads each maze in its 8 rotations and
reflections and keeps the shortest of their answers that marks a path from S to G (`tasks.maze.selection`).

    python benchmarks/bench_maze_extrapolation.py --arms lstm+progressive+distance trm+progressive+distance \
        --minutes 15 --phase train --out runs/loops -- --maze_style mixed
    python benchmarks/bench_maze_extrapolation.py --arms lstm+progressive+distance trm+progressive+distance \
        --phase sizes --sets scattered:30:200 carved:30:100 start-inside:15:100 --depths 8 16 32 64 --out runs/loops
"""

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_maze import cpu_preset, train_side_by_side  # noqa: E402  (shared by the maze benchmarks)
from bench_sudoku_recurrences import matched_trm_hidden  # noqa: E402

from modeling_lstm_trm.tasks.maze.mazes import DISTANCE_CLASSES, LOOKING, MAZE_STYLES, MIXED, draw_maze  # noqa: E402

RECURRENCES = {"lstm": [], "trm": ["--recurrence", "trm"]}
INGREDIENTS = {"progressive": ["--progressive_steps", "8"], "distance": ["--distance_target"],
               "given": ["--tie_break", "given"], "cosine": ["--schedule_by_time", "true"],
               "long": ["--halt_max_steps", "16", "--progressive_steps", "16"], "wide": [],
               "data": ["--train_mazes", "40000"], "far": ["--min_path_length", "16"],
               "front4": ["--distance_front_speed", "4"], "front8": ["--distance_front_speed", "8"],
               "parent": ["--parent_target"], "max": ["--conv_max", "true"], "cross": ["--conv_neighbours", "4"]}
WIDE_HIDDEN = 96  # +wide: the lstm arm's hidden size (the trm arm's is matched to its parameter count, as always)


def arm_flags(arm: str) -> list[str]:
    """An arm's training flags from its name: a recurrence, then ingredients joined by `+`
    (`trm+progressive+distance+cosine`)."""
    recurrence, *ingredients = arm.split("+")
    unknown = [name for name in ingredients if name not in INGREDIENTS]
    if recurrence not in RECURRENCES or unknown or len(set(ingredients)) != len(ingredients):
        raise argparse.ArgumentTypeError(f"arm {arm!r}: a recurrence ({', '.join(RECURRENCES)}), then distinct "
                                         f"ingredients joined by + ({', '.join(INGREDIENTS)})")
    return RECURRENCES[recurrence] + [flag for name in ingredients for flag in INGREDIENTS[name]]


def hidden_flags(arm: str, model_flags: dict, canvas: int) -> list[str]:
    """The arm's hidden size: the preset's (+wide: WIDE_HIDDEN) for lstm, the one matching its parameters for trm."""
    if "wide" in arm.split("+")[1:]:
        model_flags = {**model_flags, "hidden_size": WIDE_HIDDEN}
    if arm.startswith("trm"):
        return ["--hidden_size", str(matched_trm_hidden(model_flags, 6, canvas * canvas)[0])]
    return ["--hidden_size", str(model_flags["hidden_size"])]


def known_arm(arm: str) -> str:
    """--arms' type: the name, once its flags are known."""
    arm_flags(arm)
    return arm


def loops_flag(args) -> list[str]:
    return [] if args.maze_loops is None else ["--maze_loops", str(args.maze_loops)]


def train(args) -> None:
    model_flags, canvas = cpu_preset()
    train_side_by_side(Path(args.out), {
        arm: ["--task", "maze", "--recipe", "cpu", "--maze_sizes", *map(str, args.train_sizes), "--max_minutes",
              str(args.minutes), *arm_flags(arm), *hidden_flags(arm, model_flags, canvas), *loops_flag(args),
              *args.train_args]
        for arm in args.arms})


def kinds_kept(args) -> list[dict]:
    """--phase kinds: the share of each kind among mixed training mazes at each side of --train_sizes, under each
    floor in --path_floors (--min_path_length at the preset's side, scaled by the area as training scales it). The
    mixed draw redraws a maze's kind until its path is long enough, so a high floor changes the mix (+far)."""
    from modeling_lstm_trm.tasks.maze.arguments import scaled_path_length
    from modeling_lstm_trm.tasks.maze.task import MazeArguments, ModelArguments, preset_defaults

    base = preset_defaults(MazeArguments(recipe="cpu"), ModelArguments())["maze_size"]
    rows = []
    for floor in args.path_floors:
        for side in args.train_sizes:
            rng, length = random.Random(args.seed), scaled_path_length(floor, side, base)
            kept = Counter(draw_maze(side, length, rng, style="mixed")[2] for _ in range(args.num_mazes))
            rows.append({"path_floor": floor, "side": side, "min_path_length": length, "mazes": args.num_mazes,
                         "kinds": {kind: kept[kind] / args.num_mazes for kind in MIXED}})
    print("\n| --min_path_length | side (floor) | " + " | ".join(MIXED) + " |\n|---|---|" + "---|" * len(MIXED))
    for row in rows:
        print(f"| {row['path_floor']} | {row['side']} ({row['min_path_length']}) | "
              + " | ".join(f"{share:.2f}" for share in row["kinds"].values()) + " |")
    (Path(args.out) / args.results_name).write_text(json.dumps(rows, indent=1))
    return rows


def read_sets(args) -> list[tuple[str, int, int, int | None]]:
    """(style, side, count, shortest-path floor or None for the kind's `long_path`) to read every model on: --sets, or
    every style of --styles at every side of --sizes."""
    if args.sets:
        sets = []
        for spec in args.sets:
            style, side, count, *floor = spec.split(":")
            sets.append((style, int(side), int(count), int(floor[0]) if floor else None))
        return sets
    return [(style, side, args.num_mazes if side < 25 else args.num_large_mazes, None)
            for style in args.styles for side in args.sizes]


def mazes_of_set(args, style: str, side: int, count: int, floor: int | None):
    """One set of --sets (or --styles x --sizes): its style's name, shortest-path floor, questions and answers (the
    same mazes for every arm and phase: seeded by --seed plus the side)."""
    from modeling_lstm_trm.tasks.maze.mazes import LOOPS, generate_mazes, long_path
    from modeling_lstm_trm.tasks.maze.task import style_name

    generator, loops = ("carved", 0.0) if style == "no-loops" else (style, LOOPS)
    length = floor or long_path(side, generator)
    questions, answers = generate_mazes(count, side, length, seed=args.seed + side, style=generator, loops=loops)
    return style_name(generator, loops), length, questions, answers


def trained_arms(args):
    """Each arm's model, loaded from --out, with its training steps, minutes and training data's name."""
    import torch

    from modeling_lstm_trm.loading import load_model

    torch.set_num_threads(args.threads)
    for arm in args.arms:
        results = json.loads((Path(args.out) / arm / "eval_results.json").read_text())
        trained_on = json.loads((Path(args.out) / arm / "training_run.json").read_text())["data"]["source"]
        yield arm, load_model(str(Path(args.out) / arm)), {
            "trained_on": trained_on, "train_steps": results["train_steps"], "train_minutes": results["train_minutes"]}


def sizes(args) -> list[dict]:
    """Every model on every set of mazes, read at every depth and at the stopping rules."""
    from modeling_lstm_trm.tasks.maze.mazes import accuracy_by_depth

    rows = []
    for arm, model, trained in trained_arms(args):
        for style, side, count, floor in read_sets(args):
            metric = "valid_shortest_path_accuracy"  # exact match where the shortest path is unique: beside it
            name, length, questions, answers = mazes_of_set(args, style, side, count, floor)
            started = time.monotonic()
            read = accuracy_by_depth(model, questions, answers, args.depths, args.fixed_point_steps,
                                     args.batch_size)
            row = {"arm": arm, "style": name, "trained_on": trained["trained_on"], "metric": metric,
                   "side": side, "mazes": count, "min_path_length": length,
                   "train_steps": trained["train_steps"], "train_minutes": trained["train_minutes"],
                   "by_depth": {d: scores[metric] for d, scores in read["by_depth"].items()},
                   "exact_unique_by_depth": {d: scores.get("exact_accuracy_unique")
                                             for d, scores in read["by_depth"].items()},
                   **{name: {k: scores[metric] for k, scores in read[rule].items()}
                      for name, rule in (("at_fixed_point", "at_stop"),
                                         ("at_fixed_point_without_q_halt", "at_stop_without_q_halt"))},
                   **{name: {k: scores["mean_stop_step"] for k, scores in read[rule].items()}
                      for name, rule in (("mean_stop_step", "at_stop"),
                                         ("mean_stop_step_without_q_halt", "at_stop_without_q_halt"))},
                   "seconds": round(time.monotonic() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (Path(args.out) / args.results_name).write_text(json.dumps(rows, indent=2))
    return rows


def over_symmetries(args) -> list[dict]:
    """--phase symmetries: every model on every set, each maze read in --symmetries images to its fixed point
    (--fixed_point_steps' first k, the Q head not asked, at most max(--depths) steps), valid shortest path of the
    maze itself and of the shortest path among the images' answers (`tasks.maze.selection`)."""
    from modeling_lstm_trm.tasks.maze.selection import select_over_symmetries

    rows = []
    for arm, model, trained in trained_arms(args):
        for style, side, count, floor in read_sets(args):
            name, length, questions, answers = mazes_of_set(args, style, side, count, floor)
            started = time.monotonic()
            read = select_over_symmetries(model, questions, answers, max(args.depths), args.fixed_point_steps[0],
                                          args.symmetries, args.batch_size)
            row = {"arm": arm, "style": name, "side": side, "mazes": count, "min_path_length": length, **trained,
                   **{rule: read[rule]["valid_shortest_path_accuracy"]
                      for rule in ("one_image", "at_stop", "along_the_way")},
                   **{key: read[key] for key in ("symmetries", "fixed_point_steps", "max_steps", "mean_stop_step",
                                                 "images_stop_steps", "found_a_path")},
                   "seconds": round(time.monotonic() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n| arm | set | one image | {args.symmetries} images, at their stops | along the way | mean stop step "
          "(all images) |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['arm']} | {row['style']} {row['side']}x{row['side']} ({row['mazes']}) | "
              f"{row['one_image']:.3f} | {row['at_stop']:.3f} | {row['along_the_way']:.3f} | "
              f"{row['mean_stop_step']:.1f} ({row['images_stop_steps']:.1f}) |")
    (Path(args.out) / args.results_name).write_text(json.dumps(rows, indent=2))
    return rows


RULES = (("at_fixed_point", "mean_stop_step"), ("at_fixed_point_without_q_halt", "mean_stop_step_without_q_halt"))


def table(rows: list[dict]) -> None:
    depths = [str(d) for d in sorted({int(d) for r in rows for d in r["by_depth"]})]
    ks = list(rows[0]["at_fixed_point"])
    print("\n| arm | mazes (metric) | side | count | " + " | ".join(f"after {d}" for d in depths) + " | " +
          " | ".join(f"stop k={k} or Q halt (mean step) | stop k={k} alone (mean step)" for k in ks) + " |\n|" +
          "---|" * (len(depths) + 2 * len(ks) + 4))
    for r in rows:
        metric = "exact" if r["metric"] == "exact_accuracy" else "valid shortest path"
        print(f"| {r['arm']} | {r['style']} ({metric}) | {r['side']} | {r['mazes']} | " +
              " | ".join(f"{r['by_depth'][d]:.3f}" if d in r["by_depth"] else "" for d in depths) + " | " +
              " | ".join(f"{r[at][k]:.3f} ({r[step][k]:.1f})" for k in ks for at, step in RULES) + " |")


def heat_map(rows: list[dict], path: Path) -> None:
    """Valid shortest path by maze set (rows: style and side) and test-time depth (columns, then the stopping rules),
    one panel per arm (a blank cell: that set was not read at that depth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(r["arm"] for r in rows))
    ks = list(rows[0]["at_fixed_point"])
    depths = sorted({int(d) for r in rows for d in r["by_depth"]})
    labels = [str(d) for d in depths] + [f"k={k}\n{rule}" for k in ks for rule in ("or Q", "alone")]
    sets = list(dict.fromkeys((r["style"], r["side"]) for r in rows))
    fig, axes = plt.subplots(1, len(arms), figsize=(0.7 * len(labels) * len(arms) + 2.5, 0.32 * len(sets) + 1.6),
                             squeeze=False)
    for ax, arm in zip(axes.flat, arms):
        grid = np.full((len(sets), len(labels)), np.nan)
        for r in rows:
            if r["arm"] == arm:
                i = sets.index((r["style"], r["side"]))
                grid[i, :len(depths)] = [r["by_depth"].get(str(d), np.nan) for d in depths]
                grid[i, len(depths):] = [r[at][k] for k in ks for at, _ in RULES]
        ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(sets)), [f"{style} {side}x{side}" for style, side in sets], fontsize=7)
        ax.set_xlabel("after N supervision steps; stop where the answer held k steps", fontsize=8)
        ax.set_title(f"{arm} (valid shortest path)", fontsize=9)
    fig.suptitle("Generated mazes; " + "; ".join(sorted({f"trained on {r['trained_on']}" for r in rows})),
                 fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rows_of(results: list[str]) -> list[dict]:
    """The rows of several results files; an arm read from more than one file is named with its file's folder
    (e.g. `lstm+progressive+distance (s1)`), so that each run keeps its own panel."""
    files = {name: json.loads(Path(name).read_text()) for name in results}
    files_per_arm = Counter(arm for rows in files.values() for arm in {row["arm"] for row in rows})
    return [{**row, "arm": f"{row['arm']} ({Path(name).parent.name})" if files_per_arm[row["arm"]] > 1 else row["arm"]}
            for name, rows in files.items() for row in rows]


def think_on(model, x, steps: int):
    """The model's outputs after each of `steps` supervision steps on the puzzles `x`, every row kept going past its
    halt as `solve` keeps it (a carry passed back as it is restarts the rows that halted)."""
    import torch

    carry = None
    with torch.no_grad():
        for _ in range(steps):
            out = model(x, cache=carry)
            carry = replace(out.cache, halted=torch.zeros_like(out.cache.halted))
            yield out


def wave_figure(args) -> None:
    """One Maze-Hard-shaped 30x30 maze (scattered, path >= 110) solved by the first arm, at 8 evenly spaced steps of
    --depths' deepest: the marked path (top) and, for a model with the distance or the parent head, where that head
    is right (below: its steps-from-S mod 3, or a pointer to a neighbour one step nearer S): the wave spreading from
    S."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.colors import ListedColormap

    from modeling_lstm_trm.loading import load_model
    from modeling_lstm_trm.tasks.maze.mazes import (
        OPEN,
        PARENT_CLASSES,
        PATH,
        distance_target,
        distances,
        endpoints,
        generate_mazes,
        long_path,
        path_problem,
    )
    from modeling_lstm_trm.tasks.maze.task import COLOURS

    model = load_model(str(Path(args.out) / args.arms[0])).eval()
    questions, _ = generate_mazes(1, 30, long_path(30, "scattered"), seed=args.seed, style="scattered")
    x = torch.from_numpy(questions.reshape(1, -1))
    maze, truth = questions[0], distance_target(questions[0])
    steps_from_s = distances(maze, endpoints(maze)[0])[0]
    head = {DISTANCE_CLASSES: "steps from S mod 3", PARENT_CLASSES: "pointers"}.get(model.config.auxiliary_classes)
    depth, paths, waves = max(args.depths), [], []  # waves: per step, where the head is right
    for out in think_on(model, x, depth):
        paths.append(out.logits.argmax(-1).reshape(30, 30).numpy())
        if head:
            said = out.auxiliary_logits.argmax(-1).reshape(30, 30).numpy()
            waves.append(said == truth if model.config.auxiliary_classes == DISTANCE_CLASSES
                         else pointer_valid(steps_from_s[None], said[None])[0])
    steps = np.unique(np.linspace(0, depth - 1, 8).round().astype(int))
    fig, axes = plt.subplots(1 + bool(waves), len(steps), figsize=(2.1 * len(steps), 2.4 * (1 + bool(waves))),
                             squeeze=False)
    path_colours = ListedColormap(list(COLOURS.values()))  # solve.py --png's, by token
    agree_colours = ListedColormap(["#202020", "#e8e8e8", "#cf3f3f", "#2f9f5f"])  # wall, unreached, wrong, right
    for col, k in enumerate(steps):
        shown = np.where((paths[k] == PATH) & (maze == OPEN), PATH, maze)
        axes[0, col].imshow(shown, cmap=path_colours, vmin=0, vmax=len(COLOURS) - 1, interpolation="nearest")
        ok = path_problem(maze, paths[k]) is None
        axes[0, col].set_title(f"step {k + 1}: path" + (" (shortest)" if ok else ""), fontsize=8)
        if waves:
            reached = steps_from_s >= 0
            agree = np.where(~reached, 0, np.where(waves[k], 3, 2))
            axes[1, col].imshow(agree, cmap=agree_colours, vmin=0, vmax=3, interpolation="nearest")
            axes[1, col].set_title(f"{head}: {waves[k][reached].mean():.0%} right", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{args.arms[0]} on a Maze-Hard-shaped 30x30 maze (shortest path >= {long_path(30, 'scattered')} "
                 "steps); trained on sides 9-15 only", fontsize=9)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "wave.png", dpi=100)
    print(f"drawn in {Path(args.out) / 'wave.png'}")


DISTANCE_BINS = (0, 10, 20, 30, 40, 60, 80, 100, 130, 160, 220, 400)  # steps from S


def distance_by_step(args) -> list[dict]:
    """Where the wave goes wrong: for each arm with the distance head, on each set of --sets, the share of reachable
    cells whose steps-from-S class (mod 3) the head gets right, by the cell's true distance from S, after each depth
    of --depths. One error on the way shifts every class behind it: a wave that errs at a share e of its relays is
    right on about 1/3 + 2/3 (1 - e)^d of the cells d steps from S. With the parent head (+parent), a cell is right
    where its pointer names a neighbour one step nearer S (any such one: following them from G marks a shortest
    path), and the failures are the wrong pointers (`pointer_errors`)."""
    import torch

    from modeling_lstm_trm.loading import load_model
    from modeling_lstm_trm.tasks.maze.mazes import (
        PARENT_CLASSES,
        distance_target,
        distances,
        endpoints,
        generate_mazes,
        long_path,
        path_problem,
    )

    torch.set_num_threads(args.threads)
    rows, depths = [], sorted(set(args.depths))
    for arm in args.arms:
        model = load_model(str(Path(args.out) / arm)).eval()
        parents = model.config.auxiliary_classes == PARENT_CLASSES
        if model.config.auxiliary_classes != DISTANCE_CLASSES and not parents:
            raise SystemExit(f"--phase distance reads the distance or parent head (+distance, +parent): arm {arm} "
                             "has neither")
        for style, side, count, floor in read_sets(args):
            questions, _ = generate_mazes(count, side, floor or long_path(side, style), seed=args.seed + side,
                                          style=style)
            steps_from_s = np.stack([distances(maze, endpoints(maze)[0])[0] for maze in questions])
            steps_from_g = np.stack([distances(maze, endpoints(maze)[1])[0] for maze in questions])
            truth = np.stack([distance_target(maze) for maze in questions])
            right, solved = {depth: [] for depth in depths}, {depth: [] for depth in depths}
            for begin in range(0, count, args.batch_size):
                x = torch.from_numpy(questions[begin:begin + args.batch_size].reshape(-1, side * side))
                for step, out in enumerate(think_on(model, x, depths[-1]), start=1):
                    if step in right:
                        right[step].append(out.auxiliary_logits.argmax(-1).reshape(-1, side, side).numpy())
                        paths = out.logits.argmax(-1).reshape(-1, side, side).numpy()
                        solved[step] += [path_problem(maze, path) is None
                                         for maze, path in zip(questions[begin:begin + args.batch_size], paths)]
            for depth in depths:
                said = np.concatenate(right[depth])
                row = {"arm": arm, "style": style, "side": side, "mazes": count, "depth": depth}
                if parents:
                    valid = pointer_valid(steps_from_s, said)
                    row.update(right_by_distance=share_by_distance(valid, steps_from_s, steps_from_s >= 0, 3),
                               pointer_errors=pointer_errors(steps_from_s, steps_from_g, said, valid,
                                                             np.array(solved[depth])))
                else:
                    row.update(right_by_distance=share_by_distance(said == truth, steps_from_s, steps_from_s >= 0, 3),
                               first_errors=first_errors(steps_from_s, said, truth))
                rows.append(row)
                print(json.dumps(row), flush=True)
    (Path(args.out) / args.results_name).write_text(json.dumps(rows, indent=2))
    return rows


def share_by_distance(flags: np.ndarray, steps_from_s: np.ndarray, among: np.ndarray, digits: int) -> dict:
    """The share of `among`'s cells where `flags` holds, per bin of DISTANCE_BINS (steps from S) that has any."""
    shares = {}
    for low, high in zip(DISTANCE_BINS, DISTANCE_BINS[1:]):
        cells = among & (steps_from_s >= low) & (steps_from_s < high)
        if cells.any():
            shares[f"{low}-{high - 1}"] = round(float(flags[cells].mean()), digits)
    return shares


def neighbours_one_step(steps_from_s: np.ndarray, by: int = -1) -> np.ndarray:
    """(mazes, side, side, 4): whether the neighbour in each direction of `mazes.LOOKING` is one step nearer S (`by`
    -1) or one step farther (+1)."""
    padded = np.pad(steps_from_s, ((0, 0), (1, 1), (1, 1)), constant_values=-9)
    side = steps_from_s.shape[1]
    return np.stack([padded[:, 1 + dr:1 + dr + side, 1 + dc:1 + dc + side] == steps_from_s + by
                     for dr, dc in LOOKING], axis=-1) & (steps_from_s > 0)[..., None]


def pointer_valid(steps_from_s: np.ndarray, said: np.ndarray) -> np.ndarray:
    """Per cell S reaches: the parent head says S at S, and elsewhere a direction whose neighbour is one step
    nearer S (not necessarily the label's first one: any such pointer leads back along a shortest path)."""
    return np.where(steps_from_s == 0, said == 1, names_neighbour(steps_from_s, said, -1)) & (steps_from_s >= 0)


def names_neighbour(steps_from_s: np.ndarray, said: np.ndarray, by: int) -> np.ndarray:
    """Per cell: the parent head names a direction whose neighbour is one step nearer S (`by` -1) or farther (+1)."""
    direction = np.clip(said - 2, 0, len(LOOKING) - 1)
    one_step = neighbours_one_step(steps_from_s, by)
    return (said >= 2) & np.take_along_axis(one_step, direction[..., None], axis=-1)[..., 0]


def pointer_errors(steps_from_s: np.ndarray, steps_from_g: np.ndarray, said: np.ndarray, valid: np.ndarray,
                   solved: np.ndarray) -> dict:
    """The parent head's wrong pointers among the cells S reaches (S excepted): their share by how many neighbours are
    one step nearer S (1: a corridor or a branch; 2+: two waves meet) and by distance from S, and what they say
    (`said_farther`: a neighbour one step farther from S, as if the cell were reached from the other side; a grid has
    no two neighbours at the same distance from S, so these are the wrong pointers that name an open cell). Then the
    same on the band of cells that lie on some shortest path from S to G (steps from S plus steps to G equal the
    path's length) against the rest: there a neighbour one step farther from S is one step nearer G, so a wrong
    pointer there that names it (`band_said_toward_g`) has the path's two ends swapped; `band_wrong_by_position` is
    the wrong share by tenth of the way from S to G; `band_swapped_solved` / `_unsolved`: the mean share of a maze's
    band so swapped, over the mazes whose marked path is (`solved`, per maze) or is not a shortest one."""
    nearer = neighbours_one_step(steps_from_s).sum(-1)
    cells = steps_from_s > 0
    wrong = cells & ~valid
    flat_g = steps_from_g.reshape(len(said), -1)
    length = steps_from_s.reshape(len(said), -1)[np.arange(len(said)), np.argmax(flat_g == 0, -1)][:, None, None]
    band = cells & (steps_from_g >= 0) & (steps_from_s + steps_from_g == length)
    shares = {kind: round(float(wrong[cells & where].sum() / max(1, (cells & where).sum())), 4)
              for kind, where in (("one_nearer", nearer == 1), ("two_or_more_nearer", nearer >= 2),
                                  ("on_shortest_paths", band), ("off_shortest_paths", ~band))}
    tenth = np.minimum(9, 10 * steps_from_s // np.maximum(1, length))
    toward_g = wrong & band & names_neighbour(steps_from_g, said, -1)
    swapped = toward_g.sum((1, 2)) / np.maximum(1, band.sum((1, 2)))
    return {"cells": int(cells.sum()), "wrong": int(wrong.sum()), **shares,
            "wrong_by_distance": share_by_distance(wrong, steps_from_s, cells, 4),
            "said_unreachable": int((wrong & (said == 0)).sum()), "said_start": int((wrong & (said == 1)).sum()),
            "said_another_direction": int((wrong & (said >= 2)).sum()),
            "said_farther": int((wrong & names_neighbour(steps_from_s, said, 1)).sum()),
            "band_cells": int(band.sum()), "band_wrong": int((wrong & band).sum()),
            "band_said_toward_g": int(toward_g.sum()),
            "band_wrong_by_position": [round(float(wrong[band & (tenth == k)].mean()), 4) if (band & (tenth == k)).any()
                                       else None for k in range(10)],
            "solved": int(solved.sum()), "band_swapped_solved": mean_or_none(swapped[solved]),
            "band_swapped_unsolved": mean_or_none(swapped[~solved])}


def mean_or_none(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 4) if len(values) else None


def first_errors(steps_from_s: np.ndarray, said: np.ndarray, truth: np.ndarray) -> dict:
    """The relays that fail: cells the distance head gets wrong although it gets right every neighbour one step nearer
    S. Their share among such relays, by how many neighbours are one step nearer (1: a corridor or a branch; 2+: two
    waves meet) and by distance from S, and how far off the class is (mod 3: +1 is a relay one step late, +2 one step
    early)."""
    padded = np.pad(steps_from_s, ((0, 0), (1, 1), (1, 1)), constant_values=-9)
    right = np.pad(said == truth, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    nearer, nearer_right = np.zeros(steps_from_s.shape, int), np.ones(steps_from_s.shape, bool)
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = (slice(None), slice(1 + dr, padded.shape[1] - 1 + dr), slice(1 + dc, padded.shape[2] - 1 + dc))
        is_nearer = padded[moved] == steps_from_s - 1
        nearer += is_nearer
        nearer_right &= ~is_nearer | right[moved]
    relays = (steps_from_s > 0) & nearer_right
    wrong = relays & ~right[inner]
    shares = {kind: round(float(wrong[relays & where].sum() / max(1, (relays & where).sum())), 4)
              for kind, where in (("one_nearer", nearer == 1), ("two_or_more_nearer", nearer >= 2))}
    reached, off = said[wrong] > 0, (said[wrong] - truth[wrong]) % 3
    return {"relays": int(relays.sum()), "failed": int(wrong.sum()), **shares,
            "failed_by_distance": share_by_distance(wrong, steps_from_s, relays, 4),
            "late_by_one": int((reached & (off == 1)).sum()), "early_by_one": int((reached & (off == 2)).sum()),
            "said_unreachable": int((~reached).sum())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", type=known_arm, default=["lstm", "lstm+progressive"],
                        help="a recurrence (lstm, trm), then ingredients joined by + (" + ", ".join(INGREDIENTS) + ")")
    parser.add_argument("--train_sizes", type=int, nargs="+", default=[9, 11, 13, 15])
    parser.add_argument("--minutes", type=float, default=14.0, help="training wall-clock budget of each arm")
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 15, 21, 30])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--styles", nargs="+", choices=["no-loops", *MAZE_STYLES], default=["carved"],
                        help="mazes to evaluate on: carved (the default generator), no-loops (carved, no wall knocked "
                             "down), scattered (Maze-Hard's kind, path >= 110 * side^2 / 900), the other kinds of "
                             "examples/train.py's --maze_style; each at every side of --sizes")
    parser.add_argument("--sets", nargs="+", help="instead of --styles x --sizes: STYLE:SIDE:COUNT[:MIN_PATH] each, "
                                                  "e.g. scattered:30:1000 no-loops:59:50 wilson:30:100:150")
    parser.add_argument("--results_name", default="extrapolation.json", help="file name of the rows in --out")
    parser.add_argument("--maze_loops", type=float, help="training mazes' share of inner walls knocked down (examples/"
                                                         "train.py's --maze_loops; 0: no loops)")
    parser.add_argument("--fixed_point_steps", type=int, nargs="+", default=[2, 8],
                        help="stopping rules read off the deepest run: stop where the answer held k steps or the Q "
                             "head halted (also stored without the Q head)")
    parser.add_argument("--num_mazes", type=int, default=200, help="generated mazes per side below 25")
    parser.add_argument("--num_large_mazes", type=int, default=50, help="generated mazes per side from 25 up")
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the evaluation")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--out", required=True, help="folder for the models, their logs, the table and the figure")
    parser.add_argument("--path_floors", type=int, nargs="+", default=[8, 16],
                        help="--phase kinds: training --min_path_length values (the preset's 8, +far's 16)")
    parser.add_argument("--symmetries", type=int, default=8,
                        help="--phase symmetries: images of each maze read (the maze itself first), 1..8")
    parser.add_argument("--phase", choices=["all", "train", "sizes", "wave", "distance", "figure", "kinds",
                                            "symmetries"],
                        default="all", help="wave: draw the first arm's path and distance head on one Maze-Hard-shaped "
                                            "maze; distance: the distance head's share right by steps from S, after "
                                            "each depth (--results_name names its rows); figure: the table and heat "
                                            "map of the rows in --results; kinds: the mix of kinds each path floor "
                                            "keeps in the mixed training mazes (--num_mazes per side); "
                                            "symmetries: each maze in --symmetries images, the shortest path "
                                            "among their answers kept")
    parser.add_argument("--results", nargs="+", help="--phase figure: results files of earlier sizes phases")
    parser.add_argument("train_args", nargs="*", help="after --: more flags for examples/train.py (every arm)")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.phase in ("all", "train"):
        train(args)
    if args.phase == "wave":
        wave_figure(args)
    if args.phase == "distance":
        distance_by_step(args)
    if args.phase == "kinds":
        kinds_kept(args)
    if args.phase == "symmetries":
        over_symmetries(args)
    if args.phase == "figure":
        rows = rows_of(args.results)
        table(rows)
        heat_map(rows, Path(args.out) / Path(args.results_name).with_suffix(".png").name)
    if args.phase in ("all", "sizes"):
        rows = sizes(args)
        table(rows)
        heat_map(rows, Path(args.out) / Path(args.results_name).with_suffix(".png").name)


if __name__ == "__main__":
    main()
