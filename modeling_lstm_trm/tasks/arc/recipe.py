"""Training recipe of LSTM-TRM on ARC-AGI (`examples/train.py --task arc`): its flags, its presets (`presets/*.json`,
chosen by --preset: `smoke` for a CPU, `arc-agi-1` TRM's setting for GPUs), and the run.

Data: the ARC Prize JSON files in --data_dir (`arc-agi_<split>_challenges.json` and `_solutions.json` for each of
--train_splits). Every task gets --num_augmentations versions, each its own puzzle identifier, trained sparsely with
TRM's sign update. The test split's demonstration pairs are training data, its test outputs never are. Scores:
pass@1 / pass@2 on the test split's test inputs, voted over the versions, and the competition's `submission.json`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments, set_seed

from ...tokenization import build_arc_tokenizer
from ...tokenization.grid import ARC_CHARSET
from ...training.runs import Panel, check_max_minutes, finish_run, set_threads
from ...training.safety import after_training
from ..lstm_trm_recipe import (
    ModelArguments,
    build_lstm_trm,
    optimizer_with_puzzle_embedding_group,
    read_preset,
    train_and_save,
)
from .arc_data import MAX_SIDE, VOCAB_SIZE, ArcTask, encode, load_split, max_side
from .arc_dataset import ArcTrainingPairs, ArcVersions, build_versions, save_versions, training_pairs
from .evaluation import demonstration_accuracy, evaluate_arc
from .voting import write_submission

PRESETS = Path(__file__).parent / "presets"
PRESET_NAMES = ("smoke", "arc-agi-1")


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
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})


ARGUMENTS = (ArcArguments, ModelArguments)


def preset_defaults(arc_args: ArcArguments, model_args: ModelArguments) -> dict:
    if arc_args.preset not in PRESET_NAMES:
        raise ValueError(f"--preset must be one of {', '.join(PRESET_NAMES)}, got {arc_args.preset}")
    return read_preset(PRESETS / f"{arc_args.preset}.json", f"outputs/lstm-trm-arc-{arc_args.preset}")


def check(arc_args: ArcArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    check_max_minutes(arc_args.max_minutes)
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
        value = getattr(arc_args, flag)
        if value is not None and value < least:
            raise ValueError(f"--{flag} must be at least {least}, got {value}")
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


def run(arc_args: ArcArguments, model_args: ModelArguments, training_args: TrainingArguments) -> dict:
    set_seed(training_args.seed)
    set_threads(training_args, arc_args.num_threads)
    started = time.monotonic()
    is_main = training_args.process_index == 0
    side = arc_args.canvas_size or MAX_SIDE
    tasks, test_ids, counts = load_tasks(arc_args, is_main)
    versions = build_versions(tasks, arc_args.num_augmentations, seed=training_args.seed, progress=is_main)
    pairs = training_pairs(tasks, held_out=set(test_ids))
    if is_main:
        print(f"{len(tasks)} tasks, {versions.num_identifiers - 1} versions (puzzle identifiers), "
              f"{sum(map(len, pairs.values()))} training pairs before augmentation; scored: {len(test_ids)} tasks "
              f"of {arc_args.test_split}", flush=True)
    model = build_lstm_trm(model_args, training_args, vocab_size=VOCAB_SIZE, seq_len=side * side, is_main=is_main,
                           num_puzzle_identifiers=versions.num_identifiers)
    optimizer = optimizer_with_puzzle_embedding_group(model, training_args, arc_args.puzzle_emb_lr,
                                                      arc_args.puzzle_emb_weight_decay, sparse=True)
    length = training_args.max_steps * training_args.per_device_train_batch_size * training_args.world_size
    batch = training_args.per_device_eval_batch_size

    def evaluate(m, ids: list[str]) -> dict:
        results, _ = evaluate_arc(m, versions, ids, side, batch, progress=False)
        return {**demonstration_accuracy(m, versions, ids, side, batch, progress=False),
                "pass@1": results["pass@1"], "pass@2": results["pass@2"],
                "minutes": round((time.monotonic() - started) / 60, 2)}

    trainer = train_and_save(
        model, training_args, train_dataset=ArcTrainingPairs(versions, pairs, side, length, seed=training_args.seed,
                                                     translate=arc_args.translate),
        eval_dataset=test_ids, evaluate_fn=evaluate, tokenizer=build_arc_tokenizer(side),
        ema_decay=arc_args.ema_decay, max_minutes=arc_args.max_minutes, optimizer=optimizer)
    output_dir = Path(training_args.output_dir)
    if is_main:  # beside the weights: which identifier is which task version
        save_versions(versions, output_dir, side)
    with after_training("evaluation", output_dir), trainer.ema_weights() as ema:
        ema.eval()
        held_out, submission = evaluate_arc(ema, versions, test_ids, side, batch, progress=is_main)
        held_out.update(demonstration_accuracy(ema, versions, test_ids, side, batch, progress=is_main))
    results = {"held_out": held_out, "pass@1": held_out["pass@1"], "pass@2": held_out["pass@2"],
               "train_minutes": round((time.monotonic() - started) / 60, 2), "train_steps": trainer.state.global_step}
    if is_main:
        _finish(trainer, results, submission, arc_args, versions, counts, test_ids, output_dir)
    return results


def _finish(trainer, results, submission, arc_args, versions: ArcVersions, counts, test_ids, output_dir: Path) -> None:
    side = arc_args.canvas_size or MAX_SIDE
    with after_training("writing the submission, the results, the plot and the model card", output_dir):
        write_submission(submission, output_dir)
        data = {"source": f"ARC Prize files in {arc_args.data_dir}",
                "source_dir": str(Path(arc_args.data_dir).resolve()),
                "train_splits": arc_args.train_splits,
                "test_split": arc_args.test_split, "canvas_size": side,
                "num_augmentations": arc_args.num_augmentations, "puzzle_identifiers": versions.num_identifiers,
                "splits": counts}
        example = "".join(ARC_CHARSET[t] for t in encode(versions.tasks[test_ids[0]].test[0][0], side=side).ravel())
        finish_run(trainer, results, dict(task="arc", data=data, train_puzzles=len(versions.tasks),
                                          ema_decay=arc_args.ema_decay, example_puzzle=example), [
            Panel("loss", {"loss": "training loss"}, log_scale=True),
            Panel("accuracy", {"train_exact_accuracy": "training pairs that halted (exact)",
                               "eval_demo_exact_accuracy": "demonstration pairs (EMA)",
                               "eval_pass@2": f"{arc_args.test_split} pass@2 (EMA)"},
                  ylim=(0, 1.02), markers={"eval_demo_exact_accuracy", "eval_pass@2"})])
    held = results["held_out"]
    print(f"\n{arc_args.test_split} ({held['tasks']} tasks, {len(versions.augmentations)} tasks trained): pass@1 "
          f"{held['pass@1']:.3f}, pass@2 {held['pass@2']:.3f}; demonstration pairs exact "
          f"{held['demo_exact_accuracy']:.3f}", flush=True)
    print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes); submission.json beside it",
          flush=True)
