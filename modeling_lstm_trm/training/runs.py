"""What every training run shares, whatever its task: machine settings, a wall-clock budget with a progress bar that
shows it, work shared out among processes, the learning-curve plot, and the files a finished run leaves beside its
model (results, run description, plot; the model card is written from them by the command that ran the training)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainingArguments
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .safety import finite_json, last_checkpoint, verify_checkpoint

RUN_FILE = "training_run.json"  # what the run read and how it trained (and the card's task text)
EVAL_FILE = "eval_results.json"  # the run's final scores


def launcher_defaults() -> dict:
    """A machine without GPU: no pinned memory, and `use_cpu`, without which Trainer neither sets up CPU data
    parallelism (gloo) for several processes (`accelerate launch --multi_gpu --num_processes 2`) nor accepts --bf16."""
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    return {"dataloader_pin_memory": False, "use_cpu": True}


def bf16_supported() -> bool:
    """bfloat16 is fast here: a GPU with bf16, or a CPU with native bf16 instructions (avx512_bf16 or AMX). oneDNN
    also runs bf16 on plain AVX-512, emulated: measured 2.0x slower than float32 on such a CPU, so that is a no."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux: trust oneDNN's own check
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def check_output_dir(training_args: TrainingArguments, overwrite: bool) -> None:
    """Before any work: the output folder is writable, no other run trains into it, and a non-empty one is only
    reused to resume from one of its own checkpoints or when the user says so. A checkpoint to resume from is read
    whole first; `--resume_from_checkpoint true` (or `last`) means the newest checkpoint in --output_dir. With
    --overwrite_output_dir, the earlier run's checkpoints are removed, so that none of them is taken for this run's."""
    out = Path(training_args.output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output_dir {out} is a file, not a folder")
    resume = training_args.resume_from_checkpoint
    if resume and resume.lower() in ("true", "last"):
        resume = last_checkpoint(str(out), say=training_args.process_index == 0)
        if resume is None:
            raise ValueError(f"--resume_from_checkpoint {training_args.resume_from_checkpoint}: {out} holds no "
                             "checkpoint-N folder")
        if training_args.process_index == 0:
            print(f"--resume_from_checkpoint {training_args.resume_from_checkpoint}: the newest checkpoint is "
                  f"{resume}", flush=True)
        training_args.resume_from_checkpoint = resume
    if resume:
        verify_checkpoint(resume)
    if training_args.process_index != 0:  # the main process alone judges and claims the folder
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(f"--output_dir {out} is not writable ({error.strerror or error}): give another folder") \
            from None
    claim_folder(out, "--output_dir")
    resuming_here = resume and Path(resume).resolve().parent == out.resolve()
    leftovers = sorted(out.glob(f"{PREFIX_CHECKPOINT_DIR}-*"))
    if any(out.iterdir()) and not resuming_here and not overwrite:
        last = last_checkpoint(str(out))
        hint = f"resume with --resume_from_checkpoint {last}, " if last else ""
        raise ValueError(f"--output_dir {out} is not empty: {hint}pass --overwrite_output_dir to train into it anyway "
                         "(the earlier run's checkpoints are then removed), or give a new folder")
    if overwrite and not resuming_here and leftovers:
        remove_checkpoints(out, leftovers)
        print(f"--overwrite_output_dir: removed the earlier run's {len(leftovers)} checkpoint folder(s) from {out}",
              flush=True)


def remove_checkpoints(out: Path, leftovers: list[Path]) -> None:
    """Remove an earlier run's checkpoint folders, all or none: first check that each can go, then remove them. A
    symbolic link is removed as a link: what it points to, in the folder or outside it, is never touched."""
    blocked = [] if os.access(out, os.W_OK | os.X_OK) else [out]
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            blocked += [Path(folder) for folder, _, _ in os.walk(path) if not os.access(folder, os.W_OK | os.X_OK)]
    if blocked:
        raise ValueError(f"--overwrite_output_dir: {blocked[0]} cannot be emptied (permission denied), so nothing was "
                         "removed: fix its permissions or give a new --output_dir")
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


_CLAIMED: dict[Path, int] = {}  # folders this process writes, locked until it exits


def claim_folder(folder: Path, flag: str) -> None:
    """One run per folder: an exclusive lock on the folder itself (no file is written into it), which the operating
    system releases when this process ends, however it ends. Where there is no `fcntl` (Windows), no lock."""
    try:
        import fcntl
    except ImportError:
        return
    folder = folder.resolve()
    if folder in _CLAIMED:
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise ValueError(f"{flag} {folder} is in use by another run: wait for it to end, or give another folder") \
            from None
    _CLAIMED[folder] = descriptor


def release_folders() -> None:
    """Unlock the folders this process claimed (a run that ends in-process, so that the next may use them)."""
    while _CLAIMED:
        os.close(_CLAIMED.popitem()[1])


def check_training_arguments(training_args: TrainingArguments) -> None:
    """Trainer's own flags that would fail, or be silently ignored, only after training has begun."""
    args = training_args
    for flag in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(f"--max_steps must be positive (or -1 to train --num_train_epochs), got {args.max_steps}")
    if not args.max_steps > 0 and not args.num_train_epochs > 0:
        raise ValueError(f"--num_train_epochs must be positive, got {args.num_train_epochs}")
    for flag, strategy in (("save_steps", args.save_strategy), ("eval_steps", args.eval_strategy),
                           ("logging_steps", args.logging_strategy)):
        value = getattr(args, flag)
        if str(strategy).split(".")[-1].lower() == "steps" and value is not None and not value > 0:
            raise ValueError(f"--{flag} must be positive with the 'steps' strategy, got {value} (use "
                             f"--{flag.replace('steps', 'strategy')} no to turn it off)")


SCHEDULE_BY_TIME_HELP = ("With --max_minutes: warm up for --warmup_steps, then decay the learning rate by a cosine "
                         "over the wall-clock budget instead of over --max_steps (for equal-time comparisons; not "
                         "exactly resumable).")


def check_max_minutes(max_minutes: float | None, schedule_by_time: bool = False) -> None:
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"--max_minutes must be positive (leave it out for no time limit), got {max_minutes}")
    if schedule_by_time and not max_minutes:
        raise ValueError("--schedule_by_time needs --max_minutes")


def resolve_dtype(name: str) -> str:
    """A preset's "auto" dtype: bfloat16 where it is fast (`bf16_supported`), else float32."""
    return ("bfloat16" if bf16_supported() else "float32") if name == "auto" else name


def set_threads(training_args: TrainingArguments, num_threads: int | None) -> None:
    """`accelerate launch` without a config leaves each process one thread: use the cores divided among processes."""
    if training_args.device.type == "cpu":
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(num_threads or max(1, (os.cpu_count() or 1) // local_processes))


def _process_group() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, (0, 1) without it."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def process_share(count: int) -> range:
    """This process's contiguous share of `count` work items (all of them in a single process): shares taken in rank
    order and passed to `gather_in_order` give back the items' order."""
    rank, world = _process_group()
    per_process = -(-count // world)
    return range(min(rank * per_process, count), min((rank + 1) * per_process, count))


def gather_in_order(part: list) -> list:
    """Every process's `part` (picklable objects), concatenated in rank order; every process gets the whole list."""
    rank, world = _process_group()
    if world == 1:
        return part
    parts = [None] * world
    dist.all_gather_object(parts, part)
    return [item for process_part in parts for item in process_part]


class TimeBudget(ProgressCallback):
    """Stops training once `minutes` of wall-clock time are spent (the run then evaluates and saves as usual), and
    replaces Trainer's step-counting progress bar by one whose length and ETA are the budget's."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.start = minutes * 60, None

    def install(self, trainer) -> TimeBudget:
        """Take the place of the trainer's own progress bar."""
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(self)
        return self

    def cosine_schedule(self, optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up over steps, then a cosine from the peak to 0 over the remaining wall-clock budget."""

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            if self.start is None:
                return 1.0
            done = min(1.0, (time.monotonic() - self.start) / self.seconds)
            return 0.5 * (1 + math.cos(math.pi * done))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        scheduler.description = "cosine over the time budget"  # what training_run.json and the card call it
        return scheduler

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        if state.is_world_process_zero and not args.disable_tqdm:
            from tqdm.auto import tqdm

            self.training_bar = tqdm(total=round(self.seconds), unit="s", dynamic_ncols=True, desc="time budget",
                                     bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                                "[{elapsed}<{remaining}{postfix}]")

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.monotonic() - self.start
        if self.training_bar is not None:
            self.training_bar.n = min(round(elapsed), self.training_bar.total)
            self.training_bar.set_postfix(step=state.global_step)
        if elapsed > self.seconds:
            control.should_training_stop = True

    def on_prediction_step(self, args, state, control, **kwargs):
        if not args.disable_tqdm:
            super().on_prediction_step(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:  # none with --disable_tqdm
            super().on_train_end(args, state, control, **kwargs)


@dataclass
class Panel:
    """One panel of a learning-curve plot: the log keys to draw (key -> legend label) against the optimizer step."""

    ylabel: str
    curves: dict[str, str]
    log_scale: bool = False
    ylim: tuple[float, float] | None = None
    markers: set[str] = field(default_factory=set)  # keys drawn as points joined by lines (evaluations)


def plot_history(log_history: list[dict], path: Path, panels: list[Panel]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1, 4), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        for key, label in panel.curves.items():
            points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
            if points:
                axis.plot(*zip(*points), "o-" if key in panel.markers else "-", label=label)
        axis.set_xlabel("optimizer step")
        axis.set_ylabel(panel.ylabel)
        if panel.log_scale:
            axis.set_yscale("log")
        if panel.ylim:
            axis.set_ylim(*panel.ylim)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def procedure(trainer, results: dict) -> dict:
    """How the run trained, for the model card."""
    args = trainer.args
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # the optimizer inside accelerate's wrapper
    name = type(optimizer).__name__
    inner = getattr(optimizer, "optimizer", None)
    if inner is not None:
        name += f" over {type(inner).__name__}"
    device = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    return dict(steps=trainer.state.global_step, per_device_batch_size=args.per_device_train_batch_size,
                processes=args.world_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
                learning_rate=args.learning_rate,
                lr_scheduler=getattr(trainer.lr_scheduler, "description", None)
                or str(args.lr_scheduler_type).split(".")[-1].lower(),
                warmup_steps=args.warmup_steps, optimizer=name, train_minutes=results.get("train_minutes"),
                device=device, hub_model_id=args.hub_model_id)


def finish_run(trainer, results: dict, run: dict, panels: list[Panel]) -> None:
    """Main process: the run's results and description (JSON) and its learning curves beside the model, which
    `trainer.save_model` has already written; everything a model card needs is in the two JSON files."""
    output_dir = Path(trainer.args.output_dir)
    (output_dir / EVAL_FILE).write_text(json.dumps(finite_json(results), indent=2))
    evaluations = [entry for entry in trainer.state.log_history if any(key.startswith("eval_") for key in entry)]
    (output_dir / RUN_FILE).write_text(json.dumps(finite_json({**run, **procedure(trainer, results),
                                                               "evaluations": evaluations}), indent=2))
    plot_history(trainer.state.log_history, output_dir / "training_curves.png", panels)
