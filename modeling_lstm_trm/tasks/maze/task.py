"""Mazes as a task (`TASK`, `--task maze`): its flags, its presets (`presets/*.json`, chosen by --recipe), its
evaluation and its solving command with the path drawn step by step.

Data: TRM's Maze-Hard (`--dataset_name`, a Hub dataset or a folder with train.csv / test.csv; `--train_file` /
`--test_file`; `--data_dir`, a TRM prebuilt folder), or mazes generated on the fly (`--maze_size`,
`--min_path_length`), with a held-out set that no symmetry of a training maze can reproduce. Augmentation: the 8
rotations and reflections, on the fly. Scores: exact match and valid shortest path, after `halt_max_steps` (TRM's
convention) and at the Q head's halt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import TrainingArguments

from ...training.runs import Panel, check_max_minutes
from ...training.safety import finite_json
from ..lstm_trm_recipe import ModelArguments, check_distinct_files, named_preset
from ..task import CardText, PuzzleTask, Splits, output_file, panel_grid, save_figure
from .maze_hard import HUB_DATASET, MazeSet, load_csv_splits, load_trm_folder
from .mazes import (
    GOAL,
    LOOPS,
    MAZE_STYLES,
    PATH,
    START,
    VOCABULARY,
    MazeDataset,
    accuracy_by_depth,
    canonical_form,
    canvas_for,
    evaluate_mazes,
    generate_mazes,
    long_path,
    pad_to_canvas,
    path_problem,
    to_text,
    to_tokens,
)

PRESETS = Path(__file__).parent / "presets"


@dataclass
class MazeArguments:
    recipe: str = field(default="cpu", metadata={
        "aliases": ["--preset"],
        "help": "cpu (small generated mazes that learn on 2 cores) or maze-hard (TRM's 30x30 setting, for a GPU)."})
    maze_size: int | None = field(default=None, metadata={"help": "Side of generated mazes."})
    maze_sizes: list[int] | None = field(default=None, metadata={
        "help": "Several sides in one run (e.g. 7 9 11 13 15): the training and held-out mazes are shared out evenly "
                "among them, each side's shortest path at least --min_path_length scaled by its area (relative to "
                "--maze_size), all padded with walls to the largest (or --canvas_size)."})
    min_path_length: int | None = field(default=None, metadata={
        "help": "Generated mazes' shortest path has at least this many steps."})
    maze_style: str = field(default="carved", metadata={
        "help": "Generated mazes: carved (depth-first corridors, a unique shortest path) or scattered (Maze-Hard's "
                "kind: 30-50% of the cells walls at random, open fields; the answer marks one of the shortest paths)."})
    maze_loops: float | None = field(default=None, metadata={
        "help": f"Carved mazes: the share of inner walls knocked down after carving, which makes loops (default "
                f"{LOOPS}; 0: perfect mazes, one path between any two cells)."})
    train_mazes: int | None = field(default=None, metadata={"help": "Generated training mazes (augmented on the fly)."})
    eval_mazes: int | None = field(default=None, metadata={"help": "Generated held-out mazes."})
    canvas_size: int | None = field(default=None, metadata={
        "help": "Pad mazes with walls to this side, so the model also reads larger mazes (default: the mazes' side)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": f"Maze-Hard-shaped data: a Hub dataset (e.g. {HUB_DATASET}) or a folder with train.csv, test.csv."})
    train_file: str | None = field(default=None, metadata={"help": "A training CSV file of that shape."})
    test_file: str | None = field(default=None, metadata={"help": "A test CSV file of that shape."})
    data_dir: str | None = field(default=None, metadata={"help": "A folder built by TRM's build_maze_dataset.py."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})

    def uses_dataset(self) -> bool:
        return any((self.dataset_name, self.train_file, self.test_file, self.data_dir))


ARGUMENTS = (MazeArguments, ModelArguments)


def preset_defaults(maze_args: MazeArguments, model_args: ModelArguments) -> dict:
    return named_preset(PRESETS, maze_args.recipe, "--recipe", f"outputs/lstm-trm-maze-{maze_args.recipe}")


def check(maze_args: MazeArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    check_max_minutes(maze_args.max_minutes)
    if maze_args.maze_style not in MAZE_STYLES:
        raise ValueError(f"--maze_style must be one of {', '.join(MAZE_STYLES)}, got {maze_args.maze_style}")
    if maze_args.maze_style != "carved" and maze_args.uses_dataset():
        raise ValueError("--maze_style chooses generated mazes: it does not go with dataset flags")
    check_loops(maze_args.maze_loops, maze_args.maze_style, maze_args.uses_dataset())
    for flag in ("maze_size", "min_path_length", "train_mazes", "eval_mazes", "canvas_size"):
        value = getattr(maze_args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} must be at least 1, got {value}")
    if maze_args.maze_sizes is not None:
        if maze_args.uses_dataset():
            raise ValueError("--maze_sizes generates mazes: it does not go with dataset flags")
        if not maze_args.maze_sizes or min(maze_args.maze_sizes) < 5 or len(set(maze_args.maze_sizes)) != len(
                maze_args.maze_sizes):
            raise ValueError(f"--maze_sizes must be distinct sides of at least 5, got {maze_args.maze_sizes}")
        if maze_args.canvas_size and maze_args.canvas_size < max(maze_args.maze_sizes):
            raise ValueError(f"--canvas_size {maze_args.canvas_size} is smaller than --maze_sizes' largest, "
                             f"{max(maze_args.maze_sizes)}")
    if maze_args.maze_size is not None and maze_args.maze_size < 5:
        raise ValueError(f"--maze_size must be at least 5, got {maze_args.maze_size}")
    if maze_args.canvas_size and maze_args.maze_size and not maze_args.uses_dataset() \
            and maze_args.canvas_size < maze_args.maze_size:
        raise ValueError(f"--canvas_size {maze_args.canvas_size} is smaller than --maze_size {maze_args.maze_size}")
    if (maze_args.train_file is None) != (maze_args.test_file is None):
        raise ValueError("--train_file and --test_file go together (a training and a test CSV file)")
    sources = [flag for flag in ("dataset_name", "train_file", "data_dir") if getattr(maze_args, flag)]
    if len(sources) > 1:
        raise ValueError(f"give one data source: --{' or --'.join(sources)}")
    for flag in ("train_file", "test_file", "data_dir"):
        path = getattr(maze_args, flag)
        if path and not (Path(path).is_dir() if flag == "data_dir" else Path(path).is_file()):
            raise ValueError(f"--{flag}: no such {'folder' if flag == 'data_dir' else 'file'}: {path}")
    check_distinct_files(maze_args.train_file, maze_args.test_file)


def check_loops(loops: float | None, style: str, uses_dataset: bool = False) -> None:
    """--maze_loops: a share in [0, 1), for generated carved mazes only."""
    if loops is None:
        return
    if not 0 <= loops < 1:
        raise ValueError(f"--maze_loops must be a share in [0, 1), got {loops}")
    if style != "carved" or uses_dataset:
        raise ValueError("--maze_loops shapes generated carved mazes: it does not go with "
                         + ("dataset flags" if uses_dataset else f"--maze_style {style}"))


def load_splits(args: MazeArguments, seed: int, is_main: bool) -> Splits:
    """Training and held-out mazes from the dataset flags, or generated (held-out mazes are no symmetric image of a
    training maze)."""
    if args.data_dir:
        train, test = (load_trm_folder(args.data_dir, split) for split in ("train", "test"))
        source = args.data_dir
    elif args.uses_dataset():
        local = args.dataset_name and Path(args.dataset_name).is_dir()
        if args.dataset_name:
            files = {s: str(Path(args.dataset_name) / f"{s}.csv") if local else f"{s}.csv" for s in ("train", "test")}
        else:
            files = {"train": args.train_file, "test": args.test_file}
        splits = load_csv_splits(files, None if local or not args.dataset_name else args.dataset_name)
        train, test = splits["train"], splits["test"]
        source = args.dataset_name or f"{args.train_file}, {args.test_file}"
    elif args.maze_sizes:
        return several_sides(args, seed, is_main)
    else:
        if is_main:
            print(f"Generating {args.train_mazes} training and {args.eval_mazes} held-out {args.maze_size}x"
                  f"{args.maze_size} mazes (unique shortest path of >= {args.min_path_length} steps)...", flush=True)
        train, test = generated_split(args.train_mazes, args.eval_mazes, args.maze_size, args.min_path_length, seed,
                                      args.maze_style, loops_of(args))
        source = (f"generated {style_name(args.maze_style, args.maze_loops)}, {args.maze_size}x{args.maze_size}, "
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


def loops_of(args) -> float:
    return LOOPS if args.maze_loops is None else args.maze_loops


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
        paths[side] = max(2, round(args.min_path_length * side * side / args.maze_size ** 2))
        count, held = -(-args.train_mazes // len(sides)), -(-args.eval_mazes // len(sides))
        if is_main:
            print(f"Generating {count} training and {held} held-out {side}x{side} mazes (shortest path >= "
                  f"{paths[side]} steps)...", flush=True)
        train, test = generated_split(count, held, side, paths[side], seed + 7919 * k, args.maze_style,
                                      loops_of(args))
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


MAX_PANELS = 16  # solve --png: a longer trace is drawn at this many evenly spaced steps, the last one included
COLOURS = dict(zip(VOCABULARY, ["#ffffff", "#202020", "#ffffff", "#2f9f5f", "#cf3f3f", "#3f7fdf"]))  # by token


class MazeTask(PuzzleTask):
    arguments = ARGUMENTS
    card = CardText(
        title="{size}x{size} mazes (the shortest path from S to G)", task_type="maze-solving",
        task_name="Shortest path in a maze", tag="maze", second=("valid_shortest_path_accuracy", "Valid shortest path"),
        unit="mazes", count_key="mazes",
        input_hint="# wall, space open, S start, G goal; the answer marks the path with o",
        augmentation="the 8 rotations and reflections",
        limitations="a marked path is not checked by the model: verify it "
                    "(`modeling_lstm_trm.tasks.maze.mazes.path_problem`).")

    def vocabulary(self, side: int):
        return VOCABULARY

    preset_defaults = staticmethod(preset_defaults)
    check = staticmethod(check)
    load = staticmethod(load_splits)

    def training_data(self, data: MazeSet, length: int, seed: int, task_args):
        return MazeDataset(data.questions, data.answers, length=length, seed=seed)

    def to_text(self, grid) -> str:
        return to_text(grid)

    def score(self, model, data: MazeSet, **options) -> dict:
        return evaluate_mazes(model, data.questions, data.answers, **options)

    def panels(self) -> list[Panel]:
        return [Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("accuracy", {"train_exact_accuracy": "training rows that halted (exact)",
                                   "eval_exact_accuracy": "held-out exact (EMA)",
                                   "eval_valid_shortest_path_accuracy": "held-out valid shortest path (EMA)"},
                      ylim=(0, 1.02), markers={"eval_exact_accuracy", "eval_valid_shortest_path_accuracy"})]

    def report(self, results: dict, splits: Splits, config, output_dir: Path) -> None:
        held, side = results["held_out"], splits.info["maze_size"]
        print(f"\nHeld-out {side}x{side} ({held['mazes']} mazes, {splits.info['source']}): exact "
              f"{held['exact_accuracy']:.3f}, valid shortest path {held['valid_shortest_path_accuracy']:.3f} after "
              f"{config.halt_max_steps} steps (TRM's convention); at the Q head's halt "
              f"{held['exact_accuracy_at_q_halt']:.3f} / {held['valid_shortest_path_accuracy_at_q_halt']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)", flush=True)

    # ----- examples/evaluate_model.py
    def add_evaluate_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="a CSV file of Maze-Hard's shape")
        source.add_argument("--grid_size", type=int, help="generated mazes of this side (up to the model's canvas; "
                                                          "any side for the conv mixer)")
        source.add_argument("--dataset_name", help="a Maze-Hard-shaped Hub dataset or local folder (test.csv)")
        source.add_argument("--data_dir", help="a TRM prebuilt folder (its test split)")
        source.add_argument("--sizes", type=int, nargs="+", help="generated mazes of each of these sides (any side for "
                                                                 "the conv mixer), shortest path >= 0.1 side^2 "
                                                                 "(scattered: 110 side^2 / 900): a table by side and "
                                                                 "--depths")
        parser.add_argument("--num_puzzles", type=int, default=1000, help="generated mazes (per side with --sizes)")
        parser.add_argument("--min_path_length", type=int, help="shortest path of --grid_size mazes (default 8)")
        parser.add_argument("--depths", type=int, nargs="+", help="with --sizes: read every maze after each of these "
                                                                  "supervision steps, in one run to the deepest "
                                                                  "(default: --max_steps or the model's)")
        parser.add_argument("--maze_style", choices=MAZE_STYLES, default="carved",
                            help="generated mazes: carved corridors or scattered walls (Maze-Hard's kind)")
        parser.add_argument("--maze_loops", type=float, help=f"generated carved mazes: the share of inner walls "
                                                             f"knocked down (default {LOOPS}; 0: no loops)")
        parser.add_argument("--seed", type=int, default=2024, help="seed of generated mazes (training used others)")
        parser.add_argument("--max_steps", type=int, help="supervision steps (default: the model's halt_max_steps)")
        parser.add_argument("--fixed_point_steps", type=int, nargs="+", help="also stop a maze whose answer held this "
                                                                             "many steps (or the Q head halts), up to "
                                                                             "--max_steps (several k with --sizes)")

    def evaluate(self, args, parser) -> dict:
        """Exact and valid-shortest-path accuracy on a Maze-Hard CSV file or dataset, a TRM folder, or generated mazes
        (--grid_size, --min_path_length, --num_puzzles, --seed)."""
        from ...loading import load_model

        if args.num_puzzles < 1 or (args.max_steps is not None and args.max_steps < 1):
            parser.error("--num_puzzles and --max_steps must be at least 1")
        try:
            check_loops(args.maze_loops, args.maze_style, args.grid_size is None and args.sizes is None)
        except ValueError as error:
            parser.error(str(error))
        for flag in ("fixed_point_steps", "depths", "sizes"):
            if any(value < 1 for value in getattr(args, flag) or ()):
                parser.error(f"--{flag} must be at least 1")
        if args.sizes is None:
            if args.depths:
                parser.error("--depths goes with --sizes")
            if args.fixed_point_steps and len(args.fixed_point_steps) > 1:
                parser.error("several --fixed_point_steps go with --sizes")
        elif args.min_path_length is not None:
            parser.error("--min_path_length goes with --grid_size (--sizes takes 0.1 side^2)")
        model = load_model(args.model, trust_remote_code=args.trust_remote_code)
        if args.sizes:
            return self.evaluate_sizes(args, parser, model)
        try:
            if args.data_dir:
                data, name = load_trm_folder(args.data_dir, "test"), "trm_test"
            elif args.dataset_name:
                local = Path(args.dataset_name).is_dir()
                path = str(Path(args.dataset_name) / "test.csv") if local else "test.csv"
                data = load_csv_splits({"test": path}, None if local else args.dataset_name)["test"]
                name = Path(args.dataset_name).name
            elif args.file:
                data, name = load_csv_splits({"test": args.file})["test"], Path(args.file).stem
            else:
                size = args.grid_size
                length = 8 if args.min_path_length is None else args.min_path_length
                data = MazeSet(*generate_mazes(args.num_puzzles, size, length, seed=args.seed,
                                               style=args.maze_style, loops=loops_of(args)))
                name = f"generated_{generated_name(args)}_{size}x{size}_path{length}"
        except ValueError as error:
            parser.error(str(error))
        try:  # walls around a maze leave it the same maze: a model's canvas holds smaller ones
            read = data.for_model(model.config)
        except ValueError as error:
            parser.error(str(error))
        if read.size != data.size:
            print(f"{data.size}x{data.size} mazes padded with walls to the model's {read.size}x{read.size} canvas")
        data = read
        path = output_file(args, name, ".json", parser)
        fixed_point_steps = args.fixed_point_steps[0] if args.fixed_point_steps else None
        results = evaluate_mazes(model, data.questions, data.answers, batch_size=args.batch_size,
                                 max_steps=args.max_steps, fixed_point_steps=fixed_point_steps)
        path.write_text(json.dumps(finite_json(results), indent=2))
        print(f"{name}: exact {results['exact_accuracy']:.4f}, valid shortest path "
              f"{results['valid_shortest_path_accuracy']:.4f} over {results['mazes']} mazes")
        if fixed_point_steps:
            print(f"stopping at a fixed point of {fixed_point_steps} steps (or the Q head's halt): exact "
                  f"{results['exact_accuracy_at_stop']:.4f} after {results['mean_stop_step']:.2f} steps on average")
        print(json.dumps(finite_json(results)))
        return results

    def evaluate_sizes(self, args, parser, model) -> dict:
        """--sizes: generated mazes of each side read after each of --depths (one run to the deepest) and at each
        --fixed_point_steps rule; a table by side and depth, and one JSON file for all."""
        depths = args.depths or [args.max_steps or model.config.halt_max_steps]
        metric = "valid_shortest_path_accuracy" if args.maze_style == "scattered" else "exact_accuracy"
        by_side = {}
        for side in args.sizes:
            length = long_path(side, args.maze_style)
            try:
                data = MazeSet(*generate_mazes(args.num_puzzles, side, length, seed=args.seed + side,
                                               style=args.maze_style, loops=loops_of(args)))
                data = data.for_model(model.config)
            except ValueError as error:
                parser.error(f"--sizes {side}: {error}")
            by_side[str(side)] = {"min_path_length": length, **accuracy_by_depth(
                model, data.questions, data.answers, depths, args.fixed_point_steps or (), args.batch_size)}
        results = {"maze_style": style_name(args.maze_style, args.maze_loops), "metric": metric, "by_side": by_side}
        name = f"generated_{generated_name(args)}_sizes_{'-'.join(map(str, args.sizes))}"
        path = output_file(args, name, ".json", parser)
        path.write_text(json.dumps(finite_json(results), indent=2))
        rules = list(args.fixed_point_steps or ())
        print(f"\n{results['maze_style']} mazes, {metric.replace('_', ' ')} by side and supervision steps "
              f"({args.num_puzzles} per side):\n\n| side | " + " | ".join(f"after {d}" for d in sorted(set(depths)))
              + "".join(f" | stop k={k} or Q halt (mean step) | stop k={k} alone" for k in rules) + " |\n|"
              + "---|" * (1 + len(set(depths)) + 2 * len(rules)))
        for side, read in by_side.items():
            print(f"| {side} | " + " | ".join(f"{v[metric]:.3f}" for v in read["by_depth"].values()) + "".join(
                f" | {read[rule][str(k)][metric]:.3f} ({read[rule][str(k)]['mean_stop_step']:.1f})"
                for k in rules for rule in ("at_stop", "at_stop_without_q_halt")) + " |")
        print(json.dumps(finite_json(results)))
        return results

    # ----- examples/solve.py
    def add_solve_arguments(self, parser) -> None:
        parser.add_argument("puzzles", nargs="*", help="mazes, N*N characters of `# SGo` each")
        parser.add_argument("--file", help="a CSV file of Maze-Hard's shape (its questions)")
        parser.add_argument("--png", help="draw the first maze after every supervision step into this PNG file (at "
                                          f"most {MAX_PANELS} evenly spaced steps)")
        parser.add_argument("--max_steps", type=int, help="supervision steps (default: the model's)")

    def solve(self, args, parser) -> list[dict]:
        """Mazes from --file (Maze-Hard's CSV shape) or the arguments (N*N characters of `# SGo`): the path found,
        whether it is a shortest path, and the halting step; --png draws the first maze after every step."""
        import torch

        from ...loading import load_model

        if args.max_steps is not None and args.max_steps < 1:  # --batch_size and --file: cli.task_command
            parser.error("--max_steps must be at least 1")
        if not args.puzzles and not args.file:
            parser.error("give a maze or --file")
        model = load_model(args.model, trust_remote_code=args.trust_remote_code)
        try:
            if args.file:
                questions = load_csv_splits({"test": args.file})["test"].questions
            else:
                side = round(len(args.puzzles[0]) ** 0.5)
                questions = np.stack([to_tokens(text, side, f"maze {k + 1}", "maze")
                                      for k, text in enumerate(args.puzzles)])
            size = questions.shape[-1]
            canvas = canvas_for(model.config, size)
        except ValueError as error:
            parser.error(str(error))
        padded = pad_to_canvas(questions, canvas)  # walls around a smaller maze: the model's canvas holds it
        reports = []
        for begin in range(0, len(questions), args.batch_size):
            batch = padded[begin:begin + args.batch_size]
            result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=args.max_steps,
                                 return_trace=True, run_to_max=True)
            trace = result.trace.numpy().reshape(result.trace.shape[0], len(batch), canvas, canvas)[..., :size, :size]
            for k, question in enumerate(questions[begin:begin + args.batch_size]):
                answer = trace[-1, k]
                problem = path_problem(question, answer)
                text = to_text(answer)
                print(f"\nMaze {begin + k + 1} after {result.trace.shape[0]} steps:")
                print("\n".join(text[r * size:(r + 1) * size] for r in range(size)))
                print("a shortest path from S to G" if problem is None else f"NOT a shortest path: {problem}")
                reports.append({"valid_shortest_path": problem is None, "answer": text,
                                "halted_at": int(result.halted_at[k])})
            if begin == 0 and args.png:
                steps = trace[:, 0]
                draw_trace(questions[0], steps, [path_problem(questions[0], g) is None for g in steps], args.png)
                print(f"\ntrace drawn in {args.png}")
        return reports


TASK = MazeTask()


def draw_trace(question: np.ndarray, trace: np.ndarray, valid: list[bool], path: str) -> None:
    """One panel per supervision step (at most MAX_PANELS, evenly spaced): walls black, open cells white, S green,
    G red, the cells marked as path blue."""
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(list(COLOURS.values()))
    steps = np.unique(np.linspace(0, len(trace) - 1, min(len(trace), MAX_PANELS)).round().astype(int))
    fig, axes = panel_grid(len(steps), 2.8, 3.0)
    for k, ax in zip(steps, axes):
        shown = np.where((trace[k] == PATH) & ~np.isin(question, (START, GOAL)), PATH, question)  # maze and path
        ax.imshow(shown, cmap=colours, vmin=0, vmax=len(COLOURS) - 1, interpolation="nearest")
        ax.set_title(f"step {k + 1}" + (" (shortest path)" if valid[k] else ""), fontsize=10)
    save_figure(fig, path, dpi=120)
