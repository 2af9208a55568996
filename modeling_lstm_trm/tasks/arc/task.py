"""ARC-AGI as a task (`TASK`, `--task arc`): its flags, its presets (`presets/*.json`, chosen by --preset: `smoke`
for a CPU, `arc-agi-1` TRM's setting for GPUs), its evaluation as the competition scores it, and its solving command.

Data: the ARC Prize JSON files in --data_dir (`arc-agi_<split>_challenges.json` and `_solutions.json` for each of
--train_splits). Every task gets --num_augmentations versions, each its own puzzle identifier, trained sparsely with
TRM's sign update. The test split's demonstration pairs are training data, its test outputs never are. Scores:
pass@1 / pass@2 on the test split's test inputs, voted over the versions, and the competition's `submission.json`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import TrainingArguments

from ...training.runs import SCHEDULE_BY_TIME_HELP, Panel
from ..arguments import at_least, check_path
from ..lstm_trm_recipe import ModelArguments, build_optimizer, named_preset
from ..task import CardText, PuzzleTask, Splits
from .arc_data import CHARSET, MAX_SIDE, ArcTask, encode, load_split, max_side
from .arc_dataset import (
    ArcTrainingPairs,
    ArcVersions,
    build_versions,
    is_trm_folder,
    load_trm_folder,
    save_versions,
    trained_versions,
    training_pairs,
    versions_from_trm,
)
from .evaluation import demonstration_accuracy, evaluate_arc, predict_test_inputs
from .voting import voted_attempts, write_submission

PRESETS = Path(__file__).parent / "presets"


@dataclass
class ArcArguments:
    preset: str = field(default="smoke", metadata={
        "aliases": ["--recipe"],
        "help": "smoke (a few small tasks, a tiny model: the whole path on a CPU in minutes) or arc-agi-1 (TRM's "
                "setting, for GPUs)."})
    data_dir: str | None = field(default=None, metadata={
        "help": "Folder with the ARC Prize files arc-agi_<split>_challenges.json and arc-agi_<split>_solutions.json."})
    train_splits: list[str] | None = field(default=None, metadata={
        "help": "Splits whose tasks are trained on (e.g. training evaluation); must include --test_split."})
    test_split: str | None = field(default=None, metadata={
        "help": "Split scored on its test inputs (its demonstration pairs are trained on, its test outputs never)."})
    max_tasks: int | None = field(default=None, metadata={
        "help": "Keep the first N tasks (by id) of each split that fit the canvas."})
    canvas_size: int | None = field(default=None, metadata={
        "help": "Side of the canvas (TRM: 30); tasks with a grid that does not leave room for the end-of-grid marker "
                "are left out, and counted."})
    num_augmentations: int | None = field(default=None, metadata={
        "help": "Augmented versions per task besides the original (TRM: 1000), each with its own puzzle identifier."})
    translate: bool = field(default=True, metadata={
        "help": "Place training pairs at a random offset on the canvas (TRM's translation augmentation)."})
    puzzle_emb_lr: float | None = field(default=None, metadata={"help": "Learning rate of the puzzle embeddings."})
    puzzle_emb_weight_decay: float | None = field(default=None, metadata={"help": "Their weight decay."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    schedule_by_time: bool = field(default=False, metadata={"help": SCHEDULE_BY_TIME_HELP})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})


ARGUMENTS = (ArcArguments, ModelArguments)


@dataclass
class ArcSplitArguments:
    """examples/evaluate_model.py for ARC: a split whose tasks the model trained on."""

    data_dir: str | None = field(default=None, metadata={
        "help": "The folder of the ARC Prize files (default: the training run's), or a TRM ARC dataset folder "
                "(identifiers.json, test_puzzles.json)."})
    split: str | None = field(default=None, metadata={
        "help": "The split to score (default: the training run's test split); without its solutions file, only the "
                "submission is written."})

    def check(self) -> None:
        check_path(self.data_dir, "data_dir", folder=True)


@dataclass
class ArcSolveArguments(ArcSplitArguments):
    """examples/solve.py for ARC: the positional arguments are task ids of --split."""

    png: str | None = field(default=None, metadata={"help": "Draw input, attempts and truth into this PNG file."})


def preset_defaults(arc_args: ArcArguments, model_args: ModelArguments) -> dict:
    return named_preset(PRESETS, arc_args.preset, "--preset", f"outputs/lstm-trm-arc-{arc_args.preset}")


def check(arc_args: ArcArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    if not arc_args.data_dir:
        raise ValueError("--data_dir is required: the folder with the ARC Prize files arc-agi_<split>_challenges.json "
                         "(e.g. ../shared/data/arc)")
    if not Path(arc_args.data_dir).is_dir():
        raise ValueError(f"--data_dir: no such folder: {arc_args.data_dir}")
    if not arc_args.train_splits:
        raise ValueError("--train_splits needs at least one split")
    if arc_args.test_split not in arc_args.train_splits:
        raise ValueError(f"--test_split {arc_args.test_split} must be one of --train_splits "
                         f"({' '.join(arc_args.train_splits)}): the model learns each test task's rule from its "
                         "demonstration pairs")
    for split in arc_args.train_splits:
        for kind in ("challenges", "solutions"):
            path = Path(arc_args.data_dir) / f"arc-agi_{split}_{kind}.json"
            if not path.is_file():
                raise ValueError(f"--data_dir {arc_args.data_dir}: no {path.name} (split {split!r})")
    if arc_args.canvas_size is not None and not 1 <= arc_args.canvas_size <= MAX_SIDE:
        raise ValueError(f"--canvas_size must be in 1..{MAX_SIDE}, got {arc_args.canvas_size}")
    for flag, least in (("max_tasks", 1), ("num_augmentations", 0)):
        at_least(getattr(arc_args, flag), least, flag)
    if model_args.mixer == "conv":
        raise ValueError("--mixer conv reads the canvas without the puzzle's identity rows in its grid; use mlp or "
                         "attention for ARC")


def load_tasks(args: ArcArguments, is_main: bool) -> tuple[dict[str, ArcTask], list[str], dict]:
    """The tasks of every training split (first occurrence of an id wins; every left-out task is counted) and the ids
    of the test split's tasks."""
    side = args.canvas_size or MAX_SIDE
    tasks, test_ids, counts = {}, [], {}
    for split in args.train_splits:
        loaded = load_split(args.data_dir, split)
        fitting = [task_id for task_id in sorted(loaded) if max_side(loaded[task_id]) < side or side == MAX_SIDE]
        kept = fitting[:args.max_tasks] if args.max_tasks else fitting
        duplicates = [task_id for task_id in kept if task_id in tasks]
        counts[split] = {"tasks": len(loaded), "too_large_for_canvas": len(loaded) - len(fitting),
                         "beyond_max_tasks": len(fitting) - len(kept), "already_in_an_earlier_split": len(duplicates)}
        for task_id in kept:
            tasks.setdefault(task_id, loaded[task_id])
        if split == args.test_split:
            test_ids = kept
        if is_main:
            left = {k: v for k, v in counts[split].items() if k != "tasks" and v}
            print(f"ARC split {split}: {len(kept)} of {len(loaded)} tasks" +
                  (f" (left out: {', '.join(f'{v} {k}' for k, v in left.items())})" if left else ""), flush=True)
    return tasks, test_ids, counts


@dataclass
class ArcTraining:
    """What ARC trains on: every task's versions and the pairs each may teach, on a canvas of `size`."""

    versions: ArcVersions
    pairs: dict
    size: int

    def __len__(self) -> int:
        return len(self.versions.tasks)


@dataclass
class ArcHeldOut:
    """The test split's tasks, scored on their test inputs; `submission` once the final evaluation has run."""

    versions: ArcVersions
    task_ids: list[str]
    size: int
    split: str
    submission: dict | None = None


class ArcTaskDefinition(PuzzleTask):
    charset = CHARSET
    arguments = ARGUMENTS
    evaluate_arguments = ArcSplitArguments
    solve_arguments = ArcSolveArguments
    card = CardText(
        title="ARC-AGI tasks on a {size}x{size} canvas", task_type="abstract-reasoning", task_name="ARC-AGI",
        tag="arc-agi", first=("pass@1", "pass@1"), second=("pass@2", "pass@2"), unit="tasks",
        count_key="tasks",
        input_hint="TRM's canvas: . padding, | end of grid, 0-9 colours; identifiers name a trained task version",
        augmentation="1 of 8 rotations and reflections with a permutation of colours 1-9 per version, and a random "
                     "place on the canvas",
        limitations="it solves only the tasks (and their augmented versions) whose puzzle identifiers it was trained "
                    "on; a new task needs training on its demonstration pairs first.")

    preset_defaults = staticmethod(preset_defaults)
    check = staticmethod(check)

    def load_puzzles(self, task_args: ArcArguments, seed: int, is_main: bool) -> Splits:
        side = task_args.canvas_size or MAX_SIDE
        tasks, test_ids, counts = load_tasks(task_args, is_main)
        versions = build_versions(tasks, task_args.num_augmentations, seed=seed, progress=is_main)
        pairs = training_pairs(tasks, held_out=set(test_ids))
        if is_main:
            print(f"{len(tasks)} tasks, {versions.num_identifiers - 1} versions (puzzle identifiers), "
                  f"{sum(map(len, pairs.values()))} training pairs before augmentation; scored: {len(test_ids)} tasks "
                  f"of {task_args.test_split}", flush=True)
        info = {"source": f"ARC Prize files in {task_args.data_dir}",
                "source_dir": str(Path(task_args.data_dir).resolve()), "train_splits": task_args.train_splits,
                "test_split": task_args.test_split, "canvas_size": side,
                "num_augmentations": task_args.num_augmentations, "puzzle_identifiers": versions.num_identifiers,
                "splits": counts}
        return Splits(ArcTraining(versions, pairs, side), ArcHeldOut(versions, test_ids, side, task_args.test_split),
                      info)

    def from_trm(self, model, data_dir: str | None = None):
        """Also the task versions behind the model's puzzle identifiers: those of TRM's ARC dataset folder
        (`identifiers.json`, `test_puzzles.json`), so that `evaluate_model.py --data_dir FOLDER` votes over them."""
        model, write_tokenizer = super().from_trm(model, data_dir)
        if not is_trm_folder(data_dir):
            raise ValueError(f"--task arc needs --data_dir: TRM's ARC dataset folder with identifiers.json and "
                             f"test_puzzles.json (got {data_dir})")
        tasks, identifiers = load_trm_folder(data_dir)
        if len(identifiers) != model.config.num_puzzle_identifiers:
            raise ValueError(f"{data_dir}/identifiers.json names {len(identifiers)} identifiers, the model has "
                             f"{model.config.num_puzzle_identifiers}: the folder belongs to another model")
        versions = versions_from_trm(identifiers, tasks, f"{data_dir}/identifiers.json")

        def write(folder) -> None:
            write_tokenizer(folder)
            save_versions(versions, folder, math.isqrt(model.config.seq_len))

        return model, write

    def model_settings(self, splits: Splits, task_args) -> dict:
        return {"num_puzzle_identifiers": splits.train.versions.num_identifiers, "puzzle_emb_sparse": True}

    def optimizer(self, model, task_args, training_args):
        return build_optimizer(model, training_args, task_args.puzzle_emb_lr, task_args.puzzle_emb_weight_decay)

    def training_data(self, data: ArcTraining, length: int, seed: int, task_args):
        return ArcTrainingPairs(data.versions, data.pairs, data.size, length, seed=seed,
                                translate=task_args.translate)

    def example(self, splits: Splits) -> str:
        held = splits.test
        return self.to_text(encode(held.versions.tasks[held.task_ids[0]].test[0][0], side=held.size))

    def score(self, model, data: ArcHeldOut, progress: bool = False) -> dict:
        """pass@1 / pass@2 voted over the versions, and the demonstration pairs' accuracy; keeps the submission."""
        batch = 256
        results, data.submission = evaluate_arc(model, data.versions, data.task_ids, data.size, batch, progress)
        results.update(demonstration_accuracy(model, data.versions, data.task_ids, data.size, batch, progress))
        return results

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        with trainer.ema_weights() as model:
            held_out = self.score(model.eval(), splits.test, progress=trainer.args.process_index == 0)
        return {"held_out": held_out, "pass@1": held_out["pass@1"], "pass@2": held_out["pass@2"]}

    def save_beside_model(self, trainer, splits: Splits, task_args) -> None:
        save_versions(splits.train.versions, trainer.args.output_dir, splits.train.size)

    def write_files(self, trainer, results: dict, splits: Splits, task_args) -> None:
        write_submission(splits.test.submission, Path(trainer.args.output_dir))

    def panels(self) -> list[Panel]:
        return [Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("accuracy", {"train_exact_accuracy": "training pairs that halted (exact)",
                                   "eval_demo_exact_accuracy": "demonstration pairs (EMA)",
                                   "eval_pass@2": "test split pass@2 (EMA)"},
                      ylim=(0, 1.02), markers={"eval_demo_exact_accuracy", "eval_pass@2"})]

    def report(self, results: dict, splits: Splits, config, output_dir: Path) -> None:
        held = results["held_out"]
        print(f"\n{splits.test.split} ({held['tasks']} tasks, {len(splits.train)} tasks trained): pass@1 "
              f"{held['pass@1']:.3f}, pass@2 {held['pass@2']:.3f}; demonstration pairs exact "
              f"{held['demo_exact_accuracy']:.3f}", flush=True)
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes); submission.json beside it",
              flush=True)

    # ----- evaluation: a split whose tasks the model trained on, voted over every version it knows
    def evaluation_data(self, options: ArcSplitArguments, args, model):
        versions, side, split = trained_versions(args.model, options.data_dir, options.split)
        tasks = (load_trm_folder(options.data_dir)[0] if is_trm_folder(options.data_dir)
                 else load_split(options.data_dir, split, need_solutions=False))
        unknown = sorted(set(tasks) - set(versions.tasks))
        if unknown:
            raise ValueError(f"the model was not trained on {len(unknown)} of the {len(tasks)} tasks of {split} "
                             f"(first: {unknown[0]}): it knows a task only through its demonstration pairs")
        return f"arc_{split}", ArcHeldOut(versions, sorted(tasks), side, split)

    def evaluation_scores(self, model, data: ArcHeldOut, options, args) -> dict:
        results, data.submission = evaluate_arc(model, data.versions, data.task_ids, data.size, args.batch_size)
        return results

    def evaluation_report(self, name, data: ArcHeldOut, results, options, path) -> dict:
        """pass@1 / pass@2 and the competition's submission file beside the scores (never the run's own)."""
        submission = write_submission(data.submission, path.parent, f"submission_{data.split}.json")
        print(f"{data.split}: pass@1 {results['pass@1']:.4f}, pass@2 {results['pass@2']:.4f} over {results['tasks']} "
              f"scored tasks; {submission} holds both attempts for all {len(data.task_ids)}")
        return {key: value for key, value in results.items() if key != "per_task"}

    # ----- solving: task ids of --split, each test input under every version the model knows, voted
    def solve_inputs(self, puzzles: list[str], options: ArcSolveArguments, args):
        if not puzzles:
            raise ValueError("give the ids of the ARC tasks to solve")
        versions, side, split = trained_versions(args.model, options.data_dir, options.split)
        unknown = [t for t in puzzles if t not in versions.tasks]
        if unknown:
            raise ValueError(f"the model was not trained on task {unknown[0]} (split {split}): its puzzle identifiers "
                             f"know {len(versions.tasks)} tasks of that split")
        return ArcHeldOut(versions, list(puzzles), side, split)

    def solve_puzzles(self, model, held: ArcHeldOut, options: ArcSolveArguments, args) -> list[dict]:
        """Prints the two attempts and, where the truth is known, whether one is right; --png draws them."""
        candidates = predict_test_inputs(model, held.versions, held.task_ids, held.size, args.batch_size,
                                         progress=False)
        reports, rows = [], []
        for task_id in held.task_ids:
            for index, (question, truth) in enumerate(held.versions.tasks[task_id].test):
                attempts, right = voted_attempts(candidates[(task_id, index)], truth)
                verdict = "truth unknown" if right is None else "solved" if right else "not solved"
                print(f"\nTask {task_id}, test input {index + 1}: {verdict} "
                      f"({len(candidates[(task_id, index)])} versions voted)")
                for k, grid in enumerate(attempts):
                    print(f"attempt {k + 1}: " + ("none" if grid is None else
                                                " / ".join("".join(map(str, row)) for row in grid)))
                reports.append({"task": task_id, "test_input": index, "solved": right,
                                "attempts": [None if g is None else g.tolist() for g in attempts]})
                panels = [("input", question), ("attempt 1", attempts[0]), ("attempt 2", attempts[1])]
                rows.append((f"{task_id} #{index + 1}" + ("" if right is None else f"\n{verdict}"),
                             panels + ([] if truth is None else [("truth", truth)])))
        if options.png:
            draw_arc(rows, options.png)
            print(f"\nanswers drawn in {options.png}")
        return reports


TASK = ArcTaskDefinition()

ARC_COLOURS = ["#000000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaaaaa", "#f012be", "#ff851b", "#7fdbff",
               "#870c25"]  # the ARC palette, colours 0-9


def draw_arc(rows: list[tuple[str, list[tuple[str, np.ndarray | None]]]], path: str) -> None:
    """One row of panels per test input (its title, then (caption, grid) panels), in the ARC palette."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.8 * len(rows)), squeeze=False)
    for (title, panels), line in zip(rows, axes):
        for ax, (caption, grid) in zip(line, panels + [("", None)] * (cols - len(panels))):
            ax.set_xticks([])
            ax.set_yticks([])
            if grid is None:
                ax.axis("off")
                if caption:
                    ax.text(0.5, 0.5, "none", ha="center", va="center")
                    ax.set_title(caption, fontsize=9)
                continue
            ax.imshow(grid, cmap=ListedColormap(ARC_COLOURS), vmin=0, vmax=9, interpolation="nearest")
            ax.set_title(caption, fontsize=9)
        line[0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
