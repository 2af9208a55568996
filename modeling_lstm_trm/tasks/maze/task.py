"""Mazes as a task (`TASK`, `--task maze`): its presets (`presets/*.json`, chosen by --recipe), its data
(`data.py`), its flags (`arguments.py`), its scores (exact match and valid shortest path, after `halt_max_steps` by
TRM's convention and at the Q head's halt; by side and test-time depth; the shortest path among the 8 symmetric
images' answers, `selection.py`), its solving with the path drawn step by step, and the CSV files
`examples/make_dataset.py` writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...training.runs import Panel
from ..lstm_trm_recipe import ModelArguments, named_preset
from ..task import CardText, PuzzleTask, Splits, panel_grid, save_figure
from .arguments import (  # noqa: F401  (MazeArguments and check_loops: imported from here too)
    MazeArguments,
    MazeDatasetArguments,
    MazeEvaluateArguments,
    MazeSolveArguments,
    check_loops,
)
from .data import generated_name, generated_split, load_splits, loops_of, several_sides, style_name  # noqa: F401
from .maze_hard import MazeSet, load_csv_splits, load_trm_folder, write_csv
from .mazes import (
    DISTANCE_CLASSES,
    GOAL,
    PARENT_CLASSES,
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
    parent_target,
    path_problem,
    to_text,
    to_tokens,
    with_distance_target,
    with_parent_target,
)
from .selection import read_over_symmetries, select_over_symmetries

PRESETS = Path(__file__).parent / "presets"
ARGUMENTS = (MazeArguments, ModelArguments)


def preset_defaults(maze_args: MazeArguments, model_args: ModelArguments) -> dict:
    return named_preset(PRESETS, maze_args.recipe, "--recipe", f"outputs/lstm-trm-maze-{maze_args.recipe}")


MAX_PANELS = 16  # solve --png: a longer trace is drawn at this many evenly spaced steps, the last one included
COLOURS = dict(zip(VOCABULARY, ["#ffffff", "#202020", "#ffffff", "#2f9f5f", "#cf3f3f", "#3f7fdf"]))  # by token


class MazeTask(PuzzleTask):
    arguments = ARGUMENTS
    evaluate_arguments = MazeEvaluateArguments
    solve_arguments = MazeSolveArguments
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
    load_puzzles = staticmethod(load_splits)

    def training_data(self, data: MazeSet, length: int, seed: int, task_args):
        answers = (with_distance_target(data.questions, data.answers, with_arrival=bool(task_args.distance_front_speed))
                   if task_args.distance_target else with_parent_target(data.questions, data.answers)
                   if task_args.parent_target else data.answers)
        return MazeDataset(data.questions, answers, length=length, seed=seed, augment=task_args.augment,
                           tie_break=task_args.tie_break, target_in_frame=parent_target if task_args.parent_target
                           else None)

    def model_settings(self, splits, task_args) -> dict:
        """--distance_target: a second head for the distances from S (mod 3), asked from when a front of
        --distance_front_speed could have reached each cell; --parent_target: one for each cell's parent."""
        if task_args.parent_target:
            return {"auxiliary_classes": PARENT_CLASSES}
        return ({"auxiliary_classes": DISTANCE_CLASSES, "auxiliary_front_speed": task_args.distance_front_speed}
                if task_args.distance_target else {})

    def run_record(self, splits, model, task_args) -> dict:
        """Also whether the mazes were turned and which shortest path the labels marked where several tie."""
        own, record = task_args[0], super().run_record(splits, model, task_args)
        if not own.augment:
            record["card"]["augmentation"] = "nothing (TRM's Maze-Hard setting)"
        return {**record, "augment": own.augment, "tie_break": own.tie_break}

    def to_text(self, grid) -> str:
        return to_text(grid)

    def example_puzzles(self, side: int, count: int, seed: int) -> MazeSet:
        return MazeSet(*generate_mazes(count, side, long_path(side), seed=seed))

    def score(self, model, data: MazeSet, **options) -> dict:
        return evaluate_mazes(model, data.questions, data.answers, **options)

    def panels(self) -> list[Panel]:
        return [Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("accuracy", {"train_exact_accuracy": "training rows that halted (exact)",
                                   "eval_exact_accuracy": "held-out exact (EMA)",
                                   "eval_valid_shortest_path_accuracy": "held-out valid shortest path (EMA)"},
                      ylim=(0, 1.02), markers={"eval_exact_accuracy", "eval_valid_shortest_path_accuracy"})]

    def report(self, results: dict, splits: Splits, model, output_dir: Path) -> None:
        held, side = results["held_out"], splits.info["maze_size"]
        print(f"\nHeld-out {side}x{side} ({held['mazes']} mazes, {splits.info['source']}): exact "
              f"{held['exact_accuracy']:.3f}, valid shortest path {held['valid_shortest_path_accuracy']:.3f} after "
              f"{model.config.halt_max_steps} steps (TRM's convention); at the Q head's halt "
              f"{held['exact_accuracy_at_q_halt']:.3f} / {held['valid_shortest_path_accuracy_at_q_halt']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)", flush=True)

    # ----- evaluation: a CSV file or dataset, a TRM folder, generated mazes of one side, or a table by side and depth
    def evaluation_data(self, options: MazeEvaluateArguments, args, model):
        if options.sizes:  # every side must fit the model before a maze is generated
            for side in options.sizes:
                try:
                    canvas_for(model.config, side)
                except ValueError as error:
                    raise ValueError(f"--sizes {side}: {error}") from None
            return (f"generated_{generated_name(options)}_sizes_{'-'.join(map(str, options.sizes))}",
                    {side: MazeSet(*generate_mazes(options.num_puzzles, side, long_path(side, options.maze_style),
                                                   seed=options.seed + side, style=options.maze_style,
                                                   loops=loops_of(options.maze_loops))) for side in options.sizes})
        if options.data_dir:
            return "trm_test", load_trm_folder(options.data_dir, "test")
        if options.file or options.dataset_name:
            test_file, hub = options.test_csv()
            return options.source_name(), load_csv_splits({"test": test_file}, hub)["test"]
        side, length = options.grid_size, options.path_length
        canvas_for(model.config, side)  # before a maze is generated
        return (f"generated_{generated_name(options)}_{side}x{side}_path{length}",
                MazeSet(*generate_mazes(options.num_puzzles, side, length, seed=options.seed,
                                        style=options.maze_style, loops=loops_of(options.maze_loops))))

    def fit_to_model(self, data, model):
        """Walls around a maze leave it the same maze: a model's canvas holds smaller ones."""
        if isinstance(data, dict):
            return {side: mazes.for_model(model.config) for side, mazes in data.items()}
        read = data.for_model(model.config)
        if read.size != data.size:
            print(f"{data.size}x{data.size} mazes padded with walls to the model's {read.size}x{read.size} canvas")
        return read

    def evaluation_scores(self, model, data, options: MazeEvaluateArguments, args) -> dict:
        if options.symmetries > 1:  # test-time selection among the images' answers
            def select(mazes: MazeSet) -> dict:
                return select_over_symmetries(model, mazes.questions, mazes.answers,
                                              options.max_steps or model.config.halt_max_steps,
                                              options.fixed_point_steps[0], options.symmetries, args.batch_size)
            if isinstance(data, dict):
                return {"maze_style": style_name(options.maze_style, options.maze_loops),
                        "by_side": {str(side): select(mazes) for side, mazes in data.items()}}
            return select(data)
        if isinstance(data, dict):  # --sizes: one run per maze to the deepest of --depths
            depths = options.depths or [options.max_steps or model.config.halt_max_steps]
            return {"maze_style": style_name(options.maze_style, options.maze_loops),
                    "metric": "valid_shortest_path_accuracy",  # exact where the shortest path is unique
                    "by_side": {str(side): {"min_path_length": long_path(side, options.maze_style), **accuracy_by_depth(
                        model, mazes.questions, mazes.answers, depths, options.fixed_point_steps or (),
                        args.batch_size)} for side, mazes in data.items()}}
        fixed_point_steps = options.fixed_point_steps[0] if options.fixed_point_steps else None
        return evaluate_mazes(model, data.questions, data.answers, batch_size=args.batch_size,
                              max_steps=options.max_steps, fixed_point_steps=fixed_point_steps)

    def evaluation_report(self, name, data, results, options: MazeEvaluateArguments, path) -> dict:
        if options.symmetries > 1:
            for side, read in results.get("by_side", {name: results}).items():
                print(f"{side}: valid shortest path {read['one_image']['valid_shortest_path_accuracy']:.4f} read once "
                      f"(mean stop step {read['mean_stop_step']:.1f}); the shortest path among {read['symmetries']} "
                      f"images' answers {read['at_stop']['valid_shortest_path_accuracy']:.4f} at their stops, "
                      f"{read['along_the_way']['valid_shortest_path_accuracy']:.4f} along the way "
                      f"({read['images_stop_steps']:.1f} steps per maze in all)")
            return results
        if "by_side" in results:
            print_depth_table(results, options.fixed_point_steps or (), options.num_puzzles)
            return results
        print(f"{name}: exact {results['exact_accuracy']:.4f}, valid shortest path "
              f"{results['valid_shortest_path_accuracy']:.4f} over {results['mazes']} mazes")
        if "mean_stop_step" in results:
            stops = (("or the Q head's halt", "at_stop", "mean_stop_step"),
                     ("alone (the Q head not asked)", "at_fixed_point", "mean_fixed_point_step"))
            for rule, suffix, mean_step in stops:
                print(f"stopping at a fixed point of {results['fixed_point_steps']} steps {rule}: exact "
                      f"{results[f'exact_accuracy_{suffix}']:.4f}, valid shortest path "
                      f"{results[f'valid_shortest_path_accuracy_{suffix}']:.4f} after {results[mean_step]:.2f} "
                      "steps on average")
        return results

    # ----- solving: mazes from --file (Maze-Hard's CSV shape) or the arguments (N*N characters of `# SGo`)
    def solve_inputs(self, puzzles: list[str], options: MazeSolveArguments, args) -> np.ndarray:
        if not puzzles and not options.file:
            raise ValueError("give a maze or --file")
        if options.file:
            return load_csv_splits({"test": options.file})["test"].questions
        side = round(len(puzzles[0]) ** 0.5)
        return np.stack([to_tokens(text, side, f"maze {k + 1}", "maze") for k, text in enumerate(puzzles)])

    def solve_puzzles(self, model, questions: np.ndarray, options: MazeSolveArguments, args) -> list[dict]:
        """The path found, whether it is a shortest path, and the halting step; --png draws the first maze after
        every step. With --fixed_point_steps each maze stops at its fixed point, and with --symmetries the answer is
        the pick over its images (as evaluate_model.py reads them)."""
        size = questions.shape[-1]
        canvas = canvas_for(model.config, size)
        padded = pad_to_canvas(questions, canvas)  # walls around a smaller maze: the model's canvas holds it
        if options.fixed_point_steps:
            reads = read_over_symmetries(model, padded, options.max_steps, options.fixed_point_steps,
                                         options.symmetries, args.batch_size, progress=len(questions) > 1)
            answers = (reads.along_the_way if options.symmetries > 1 else reads.one_image)[..., :size, :size]
            image = max(int(reads.picked[0, 0]), 0) if options.symmetries > 1 else 0
            first_trace = reads.first_maze_trace[: int(reads.stops[image, 0]), image, :size, :size]
            halted = reads.stops[0]
        else:
            answers, halted, first_trace = self.run_to_max_steps(model, padded, options.max_steps, args.batch_size)
            answers, first_trace = answers[..., :size, :size], first_trace[..., :size, :size]
            image = 0
        reports = []
        for k, (question, answer) in enumerate(zip(questions, answers)):
            problem = path_problem(question, answer)
            text = to_text(answer)
            print(f"\nMaze {k + 1} stopped at step {int(halted[k])} (its fixed point or --max_steps):"
                  if options.fixed_point_steps else f"\nMaze {k + 1} after {len(first_trace)} steps:")
            print("\n".join(text[r * size:(r + 1) * size] for r in range(size)))
            print("a shortest path from S to G" if problem is None else f"NOT a shortest path: {problem}")
            report = {"valid_shortest_path": problem is None, "answer": text, "halted_at": int(halted[k])}
            if options.symmetries > 1:
                report["picked_image"], report["picked_step"] = (int(v) for v in reads.picked[k])
                print("no image's answer is a path: the maze itself at its stop" if report["picked_image"] < 0 else
                      f"picked from image {report['picked_image']} (of {options.symmetries}) at step "
                      f"{report['picked_step']} of its {int(reads.stops[report['picked_image'], k])}")
            reports.append(report)
        if options.png:
            draw_trace(questions[0], first_trace, [path_problem(questions[0], g) is None for g in first_trace],
                       options.png)
            print(f"\ntrace drawn in {options.png}" + (f" (image {image}, turned back)" if image else ""))
        return reports

    @staticmethod
    def run_to_max_steps(model, mazes: np.ndarray, max_steps: int | None, batch_size: int):
        """Every maze's answer after `max_steps` (default the model's), the step its Q head halted, and the first
        maze's trace."""
        import torch

        answers, halted, first_trace = [], [], None
        for begin in range(0, len(mazes), batch_size):
            batch = mazes[begin:begin + batch_size]
            result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=max_steps,
                                 return_trace=True, run_to_max=True)
            trace = result.trace.numpy().reshape(result.trace.shape[0], len(batch), *batch.shape[1:])
            first_trace = trace[:, 0] if first_trace is None else first_trace
            answers.append(trace[-1])
            halted.append(result.halted_at.numpy())
        return np.concatenate(answers), np.concatenate(halted), first_trace

    # ----- examples/make_dataset.py
    dataset_arguments = MazeDatasetArguments

    def write_dataset(self, path: Path, options: MazeDatasetArguments) -> dict:
        """Generated mazes in Maze-Hard's CSV shape (the rating column is the path's length), none of them a
        symmetric image of one in the CSV file --exclude (e.g. the training set: a held-out split); a summary."""
        seen = set()
        if options.exclude:
            try:
                excluded = load_csv_splits({"exclude": options.exclude})["exclude"].questions
            except ValueError as error:
                raise ValueError(f"--exclude: {error}") from None
            seen = {canonical_form(q) for q in excluded}
        data = MazeSet(*generate_mazes(options.num_puzzles, options.size, options.min_path_length, seed=options.seed,
                                       exclude=seen, style=options.maze_style, loops=loops_of(options.maze_loops)))
        write_csv(path, data, source=f"lstm-trm-generated-seed{options.seed}")
        steps = (data.answers == PATH).sum((1, 2)) + 1
        print(f"wrote {len(data)} {options.size}x{options.size} mazes to {path}; shortest paths of {steps.min()} to "
              f"{steps.max()} steps")
        return {"output": str(path), "mazes": len(data), "size": options.size,
                "min_path_length": options.min_path_length, "seed": options.seed, "excluded": len(seen),
                "path_length_percentiles": {str(q): float(np.percentile(steps, q)) for q in (0, 50, 100)}}


def print_depth_table(results: dict, rules, per_side: int) -> None:
    """--sizes: a Markdown table of the metric by side and depth, then at each stopping rule (with its mean step)."""
    metric, by_side = results["metric"], results["by_side"]
    depths = list(next(iter(by_side.values()))["by_depth"])
    print(f"\n{results['maze_style']} mazes, {metric.replace('_', ' ')} by side and supervision steps "
          f"({per_side} per side):\n\n| side | " + " | ".join(f"after {d}" for d in depths)
          + "".join(f" | stop k={k} or Q halt (mean step) | stop k={k} alone" for k in rules) + " |\n|"
          + "---|" * (1 + len(depths) + 2 * len(rules)))
    for side, read in by_side.items():
        print(f"| {side} | " + " | ".join(f"{v[metric]:.3f}" for v in read["by_depth"].values()) + "".join(
            f" | {read[rule][str(k)][metric]:.3f} ({read[rule][str(k)]['mean_stop_step']:.1f})"
            for k in rules for rule in ("at_stop", "at_stop_without_q_halt")) + " |")


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

