"""What a task is: one object that `examples/train.py`, `evaluate_model.py`, `solve.py` and the Hub card ask for
everything task-specific, so that a new task is a new module and nothing else changes.

`Task` is the interface: flag dataclasses (training, evaluation, solving; the command layer `modeling_lstm_trm.cli`
builds the parsers from them) and hooks. Training goes through one pipeline, `run_training`, for every task (the data,
the model, the optimizer, the trainer, then the saved model, scores, results and curves). `PuzzleTask` is a
grid-puzzle task for LSTM-TRM with every hook written once: a task gives its vocabulary (`charset`), its puzzles
(`generate`, `load`), its augmentation, its scores and its drawings. Sudoku, mazes and ARC override what they do
differently.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainingArguments, set_seed

from ..training import StatefulTrainer
from ..training.runs import SCHEDULE_BY_TIME_HELP, Panel, TimeBudget, check_max_minutes, finish_run, set_threads
from ..training.safety import after_training, save_final_model, train_or_keep
from .arguments import PuzzleEvaluateArguments, PuzzleSolveArguments, at_least


@dataclass
class CardText:
    """What the model card says about a task (hub_cards/lstm_trm.md fills it in): `first` and `second` are the
    (key in the run's results, label) of the two scores it reports."""

    title: str  # with {size}
    task_type: str
    task_name: str
    tag: str
    unit: str
    input_hint: str
    augmentation: str
    limitations: str
    first: tuple[str, str] = ("exact_accuracy", "Exact accuracy")
    second: tuple[str, str] = ("exact_accuracy_at_q_halt", "Exact at the Q head's halt")
    count_key: str = "puzzles"  # the key in a result that counts what was scored


@dataclass
class Splits:
    train: Any  # a PuzzleSet (or a task's own set with `questions`, `answers`, `size`), or the LM's token streams
    test: Any
    info: dict = field(default_factory=dict)  # what was read, for training_run.json and the card
    tokenizer: Any = None  # saved beside the model

    def __iter__(self):  # train, test, info = task.load(...)
        return iter((self.train, self.test, self.info))


def check_shared_flags(task_args) -> None:
    """The checks every training run shares, made once before its task's own `check`: the time budget (the first
    flag group's `max_minutes` and `schedule_by_time`) and each flag group's own `check` (the model's settings, ...)."""
    first = task_args[0]
    check_max_minutes(getattr(first, "max_minutes", None), getattr(first, "schedule_by_time", False))
    for flags in task_args:
        if hasattr(flags, "check"):
            flags.check()


class Task:
    """A task as the commands see it. `name` is how `--task` and a saved config (`config.task`) call it: a name in
    `modeling_lstm_trm.tasks.TASKS`, or the importable module that holds the task as `TASK`."""

    name: str = ""
    arguments: tuple[type, ...] = ()  # flag dataclasses of examples/train.py (beside TrainingArguments)
    evaluate_arguments: type | None = None  # examples/evaluate_model.py's flag dataclass (None: nothing to evaluate)
    solve_arguments: type | None = None  # examples/solve.py's (None: nothing to solve)
    model_type = "lstm_trm"  # the type of the models it trains (their config's `model_type`)
    language_model = False  # its models are loaded with their language-model head
    card: CardText | None = None

    # ----- examples/train.py: flags, then `run_training` through the hooks below
    def preset_defaults(self, *task_args) -> dict:
        """Flag defaults from the task's preset, given the flags that choose it; the command line wins."""
        return {}

    def check(self, *task_args, training_args: TrainingArguments) -> None:
        """ValueError, naming the flag, for anything that cannot work, before any work is done: the rules that span
        flag groups (examples/train.py has run `check_shared_flags` first)."""

    def run(self, *task_args, training_args: TrainingArguments) -> dict:
        """Train, evaluate and save; the results."""
        return run_training(self, task_args, training_args)

    def load(self, task_args, training_args: TrainingArguments, is_main: bool) -> Splits:
        """The training and held-out data, with the tokenizer the model will be saved with."""
        raise NotImplementedError

    def build_model(self, splits: Splits, task_args, training_args: TrainingArguments, is_main: bool):
        raise NotImplementedError

    def trainer_arguments(self, model, splits: Splits, task_args, training_args: TrainingArguments,
                          budget: TimeBudget | None, started: float) -> dict:
        """`StatefulTrainer`'s arguments besides the model and `TrainingArguments`: datasets, optimizers, ...
        (`started`: the run's start, `time.monotonic()`)."""
        return {}

    def save_beside_model(self, trainer, splits: Splits, task_args) -> None:
        """Files a trained model needs beside its weights, written as soon as it is saved (ARC: which puzzle
        identifier is which task version)."""

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        """The run's final scores, as `eval_results.json` holds them."""
        return {}

    def write_files(self, trainer, results: dict, splits: Splits, task_args) -> None:
        """Files of the task's own beside the model after the final evaluation (ARC: the submission)."""

    def run_record(self, splits: Splits, model, task_args) -> dict:
        """What `training_run.json` says of the data (besides how the run trained), for the card."""
        return {"task": self.name}

    def panels(self) -> list[Panel]:
        return [Panel("loss", {"loss": "training loss"}, log_scale=True)]

    def report(self, results: dict, splits: Splits, model, output_dir: Path) -> None:
        """The lines printed at the end of training."""
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)", flush=True)

    def card_text(self, info: dict, config: dict) -> dict | None:
        """What the model card says of the task, for a model of `config` (a dict) trained on data described by
        `info` (`Splits.info`): `CardText`'s fields with the title's size filled in. Written into the run's JSON,
        so the card needs no task code."""
        if self.card is None:
            return None
        size = info.get("size") or math.isqrt(config.get("seq_len", 0))
        return {**asdict(self.card), "title": self.card.title.format(size=size), "size": size}

    # ----- examples/evaluate_model.py (`cli.evaluate`): the data, the model's fit, the scores, the report. `options`
    # holds the task's evaluation flags, `args` the command's own (--model, --batch_size, --trust_remote_code, ...)
    def evaluation_data(self, options, args, model) -> tuple[str | None, Any]:
        """The data to score and the name its results are filed under (`eval_<name>.json`; None: no file)."""
        raise NotImplementedError

    def fit_to_model(self, data, model):
        """The data as the model reads it; ValueError where it cannot."""
        return data

    def evaluation_scores(self, model, data, options, args) -> dict:
        raise NotImplementedError

    def evaluation_report(self, name: str | None, data, results: dict, options, path: Path | None) -> dict:
        """Print what a person reads (and draw it); returns what the command returns and prints as its last line."""
        return results

    # ----- examples/solve.py (`cli.solve`): the puzzles, then solving and showing them
    def solve_inputs(self, puzzles: list[str], options, args):
        raise NotImplementedError

    def solve_puzzles(self, model, inputs, options, args) -> list[dict]:
        raise NotImplementedError


def run_training(task: Task, task_args: tuple, training_args: TrainingArguments) -> dict:
    """Train a model on a task, evaluate it and save everything: the data, the model, training (with its periodic
    held-out scores), the saved model and tokenizer (before anything that can fail after training), the final scores,
    then the results and curves (the command that called this writes the card from them). `task_args[0]` is the
    task's own flags (with `num_threads`, `max_minutes` and `schedule_by_time`)."""
    own = task_args[0]
    set_seed(training_args.seed)
    set_threads(training_args, own.num_threads)
    started = time.monotonic()
    is_main = training_args.process_index == 0
    splits = task.load(task_args, training_args, is_main)
    model = task.build_model(splits, task_args, training_args, is_main)
    budget = TimeBudget(own.max_minutes) if own.max_minutes else None
    schedule = None  # --lr_scheduler_type's, over --max_steps
    if own.schedule_by_time:
        schedule = partial(budget.cosine_schedule, warmup_steps=training_args.warmup_steps)
    trainer = StatefulTrainer(model=model, args=training_args, lr_schedule=schedule,
                              **task.trainer_arguments(model, splits, task_args, training_args, budget, started))
    if budget:
        budget.install(trainer)
    train_or_keep(trainer, training_args.resume_from_checkpoint)
    output_dir = Path(training_args.output_dir)
    save_final_model(trainer, output_dir)
    if is_main:
        splits.tokenizer.save_pretrained(output_dir)
        task.save_beside_model(trainer, splits, own)
    with after_training("evaluation", output_dir):
        results = task.evaluate_run(trainer, splits, own)
    results.update(train_minutes=round((time.monotonic() - started) / 60, 2), train_steps=trainer.state.global_step)
    if is_main:
        with after_training("writing the results and the plot", output_dir):
            task.write_files(trainer, results, splits, own)
            finish_run(trainer, results, task.run_record(splits, model, task_args), task.panels())
        task.report(results, splits, model, output_dir)
    return results


# ----- grid puzzles -------------------------------------------------------------------------------------------------

@dataclass
class PuzzleSet:
    """One split of a grid-puzzle task: questions and answers as token grids, each (count, side, side)."""

    questions: np.ndarray
    answers: np.ndarray

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def size(self) -> int:
        return self.questions.shape[-1]


def panel_grid(count: int, width: float = 2.6, height: float = 2.8):
    """A figure of `count` panels, at most 4 a row, each axis off (a trace: one panel per supervision step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(count, 4)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)[:count]


def save_figure(fig, path: str, dpi: int = 110) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


@dataclass
class PuzzleArguments:
    """The flags every puzzle task has; a task's own dataclass may subclass it."""

    train_puzzles: int = field(default=1000, metadata={"help": "Training puzzles, augmented on the fly."})
    eval_puzzles: int = field(default=200, metadata={"help": "Held-out puzzles for evaluation."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    schedule_by_time: bool = field(default=False, metadata={"help": SCHEDULE_BY_TIME_HELP})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})


class PuzzleTask(Task):
    """A grid-puzzle task for LSTM-TRM. The least a task gives: `name`, `charset` (token k is character k; token 0 is
    the blank or padding), `card`, and `generate(count, seed) -> PuzzleSet`; then train, evaluate, solve and the card
    work. `default_preset` holds flag defaults (a preset file's content)."""

    charset: str = ""
    default_preset: dict = {}
    evaluate_arguments = PuzzleEvaluateArguments
    solve_arguments = PuzzleSolveArguments
    trm_extra_tokens = 0  # tokens of TRM's vocabulary for this task that ours does not have (Sudoku: its padding)

    @property
    def arguments(self):
        from .lstm_trm_recipe import ModelArguments

        return (PuzzleArguments, ModelArguments)

    def vocabulary(self, side: int) -> str:
        """The characters of the tokens a model of grids of this side reads (the model's vocab_size is its length)."""
        return self.charset

    # ----- data
    def generate(self, count: int, seed: int) -> PuzzleSet:
        raise NotImplementedError(f"task {self.name} generates no puzzles")

    def example_puzzles(self, side: int, count: int, seed: int) -> PuzzleSet:
        """Puzzles of this side to try a model on (the demo's Generate button)."""
        return self.generate(count, seed)

    def load_puzzles(self, task_args, seed: int, is_main: bool) -> Splits:
        """The training and held-out puzzles (default: generated, the held-out ones with another seed)."""
        if is_main:
            print(f"Generating {task_args.train_puzzles} training and {task_args.eval_puzzles} held-out puzzles...",
                  flush=True)
        return Splits(self.generate(task_args.train_puzzles, seed),
                      self.generate(task_args.eval_puzzles, seed + 1_000_003), {"source": "generated"})

    def augment(self, question: np.ndarray, answer: np.ndarray, rng: np.random.Generator):
        """A random equivalent pair, drawn on the fly for every training item (default: the 8 symmetries of the
        square, which keep a puzzle whose rule has no direction)."""
        k = int(rng.integers(8))
        return dihedral(question, k), dihedral(answer, k)

    def training_data(self, data, length: int, seed: int, task_args):
        from .puzzle_dataset import AugmentedPuzzles

        return AugmentedPuzzles(data.questions, data.answers, length, seed, self.augment)

    # ----- text
    def tokenizer(self, side: int):
        from ..tokenization import build_cell_tokenizer

        return build_cell_tokenizer(self.vocabulary(side), side * side)

    def to_text(self, grid: np.ndarray) -> str:
        return "".join(self.charset[t] for t in np.asarray(grid).reshape(-1))

    def parse(self, text: str, where: str) -> np.ndarray:
        """One puzzle written as side*side characters of the charset (line breaks dropped) as a token grid."""
        text = text.replace("\n", "").replace("\r", "")
        side = round(len(text) ** 0.5)
        if not text or side * side != len(text):
            raise ValueError(f"{where}: {len(text)} characters is not a square grid")
        unknown = sorted(set(text) - set(self.charset))
        if unknown:
            raise ValueError(f"{where}: {unknown[0]!r} is not one of {self.charset!r}")
        return np.array([self.charset.index(ch) for ch in text], dtype=np.int64).reshape(side, side)

    def read_file(self, path: str) -> PuzzleSet:
        """Puzzles of a text file, `question answer` per line (`//` starts a comment; the answer may be left out,
        then it is not known and a blank grid stands for it)."""
        questions, answers = [], []
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            parts = line.split("//", 1)[0].split()
            if not parts:
                continue
            if len(parts) > 2:
                raise ValueError(f"{path}, line {number}: expected a question and at most an answer")
            question = self.parse(parts[0], f"{path}, line {number}")
            if questions and question.shape != questions[0].shape:
                raise ValueError(f"{path}, line {number}: a {len(question)}x{len(question)} grid after "
                                 f"{len(questions[0])}x{len(questions[0])} ones")
            questions.append(question)
            answers.append(self.parse(parts[1], f"{path}, line {number}") if len(parts) == 2 else 0 * question)
        if not questions:
            raise ValueError(f"{path} holds no puzzle")
        return PuzzleSet(np.stack(questions), np.stack(answers))

    # ----- a model trained by TRM's own code (examples/convert_trm_checkpoint.py)
    def from_trm(self, model, data_dir: str | None = None):
        """A converted TRM model made to read this task's tokens (TRM numbers a task's characters as we do, after its
        padding token 0), and a function that writes what its folder needs beside the weights (the tokenizer).
        ValueError where the model's vocabulary or grid is not this task's; nothing is written before that."""
        side = math.isqrt(model.config.seq_len)
        expected = len(self.vocabulary(side)) + self.trm_extra_tokens
        if side * side != model.config.seq_len or model.config.vocab_size != expected:
            raise ValueError(f"a TRM {self.name} model has {expected} tokens on a square grid; this one has "
                             f"{model.config.vocab_size} tokens on {model.config.seq_len} cells")
        model.config.task = self.name
        return model, self.tokenizer(side).save_pretrained

    # ----- scores and drawings
    def score(self, model, data, batch_size: int = 256, max_steps: int | None = None) -> dict:
        """Exact accuracy by TRM's convention (every puzzle runs `max_steps`, default `halt_max_steps`) and at the Q
        head's halt, with the mean halting step."""
        import torch

        device = next(model.parameters()).device
        final, at_halt, steps = [], [], []
        for begin in range(0, len(data), batch_size):
            x = torch.from_numpy(data.questions[begin:begin + batch_size].reshape(-1, data.size ** 2))
            out = model.solve(x.to(device), max_steps=max_steps, run_to_max=True)
            final.append(out.final_predictions.cpu().numpy())
            at_halt.append(out.predictions.cpu().numpy())
            steps.append(out.halted_at.cpu().numpy())
        truth = data.answers.reshape(len(data), -1)
        return {"puzzles": len(data),
                "exact_accuracy": float((np.concatenate(final) == truth).all(1).mean()),
                "exact_accuracy_at_q_halt": float((np.concatenate(at_halt) == truth).all(1).mean()),
                "mean_steps": float(np.concatenate(steps).mean())}

    def draw(self, question: np.ndarray, trace: np.ndarray, path: str) -> None:
        """One panel per supervision step, each token a colour."""
        fig, axes = panel_grid(len(trace))
        for k, ax in enumerate(axes):
            ax.imshow(trace[k], cmap="tab10", vmin=0, vmax=max(9, len(self.charset) - 1), interpolation="nearest")
            ax.set_title(f"step {k + 1}", fontsize=10)
        save_figure(fig, path)

    def panels(self) -> list[Panel]:
        return [Panel("loss", {"loss": "training loss"}, log_scale=True),
                Panel("exact-puzzle accuracy", {"train_exact_accuracy": "training rows that halted",
                                                "eval_exact_accuracy": "held-out (EMA)"},
                      ylim=(0, 1.02), markers={"eval_exact_accuracy"})]

    # ----- training (`run_training`'s hooks)
    def preset_defaults(self, *task_args) -> dict:
        return {"output_dir": f"outputs/lstm-trm-{self.name.split('.')[-1]}", **self.default_preset}

    def check(self, *task_args, training_args: TrainingArguments) -> None:
        for flag in ("train_puzzles", "eval_puzzles"):
            at_least(getattr(task_args[0], flag, None), 1, flag)

    def load(self, task_args, training_args: TrainingArguments, is_main: bool) -> Splits:
        splits = self.load_puzzles(task_args[0], training_args.seed, is_main)
        splits.tokenizer = self.tokenizer(splits.train.size)
        return splits

    def model_settings(self, splits: Splits, task_args) -> dict:
        """Config settings the data decides (ARC: the number of puzzle identifiers)."""
        return {}

    def build_model(self, splits: Splits, task_args, training_args: TrainingArguments, is_main: bool):
        from .lstm_trm_recipe import build_lstm_trm

        side = splits.train.size
        return build_lstm_trm(task_args[1], training_args, vocab_size=len(self.vocabulary(side)), seq_len=side * side,
                              is_main=is_main, task=self.name, **self.model_settings(splits, task_args[0]))

    def optimizer(self, model, task_args, training_args):
        """The optimizer (None: Trainer's AdamW)."""
        return None

    def trainer_arguments(self, model, splits: Splits, task_args, training_args: TrainingArguments,
                          budget: TimeBudget | None, started: float) -> dict:
        own = task_args[0]
        length = training_args.max_steps * training_args.per_device_train_batch_size * training_args.world_size

        def evaluate(m, data) -> dict:
            return {**self.score(m, data), "minutes": round((time.monotonic() - started) / 60, 2)}

        return dict(train_dataset=self.training_data(splits.train, length, training_args.seed, own),
                    eval_dataset=splits.test, evaluate_fn=evaluate, ema_decay=own.ema_decay or None,
                    optimizers=(self.optimizer(model, own, training_args), None))

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        with trainer.ema_weights() as model:
            return {"held_out": self.score(model, splits.test)}

    def example(self, splits: Splits) -> str:
        """A held-out puzzle as text, for the card and the closing hint."""
        return self.to_text(splits.test.questions[0])

    def run_record(self, splits: Splits, model, task_args) -> dict:
        own = task_args[0]
        return dict(task=self.name, data=splits.info, train_puzzles=len(splits.train), ema_decay=own.ema_decay,
                    example_puzzle=self.example(splits), card=self.card_text(splits.info, model.config.to_dict()))

    def report(self, results: dict, splits: Splits, model, output_dir: Path) -> None:
        held = results["held_out"]
        print(f"\nHeld-out ({len(splits.test)} {self.card.unit}, {splits.info.get('source', '?')}): exact "
              f"{held[self.card.first[0]]:.3f} after {model.config.halt_max_steps} steps (TRM's convention), "
              f"{held.get('exact_accuracy_at_q_halt', float('nan')):.3f} at the Q head's halt")
        super().report(results, splits, model, output_dir)

    # ----- evaluation: puzzles from --file, or generated
    def evaluation_data(self, options, args, model):
        if options.file:
            return Path(options.file).stem, self.read_file(options.file)
        return f"generated_seed{options.seed}", self.generate(options.num_puzzles, options.seed)

    def fit_to_model(self, data, model):
        if data.size ** 2 != model.config.seq_len:
            raise ValueError(f"the model reads {model.config.seq_len} cells, these puzzles have {data.size ** 2}")
        return data

    def evaluation_scores(self, model, data, options, args) -> dict:
        return self.score(model, data, batch_size=args.batch_size, max_steps=options.max_steps)

    def evaluation_report(self, name, data, results, options, path) -> dict:
        print(f"{name}: exact {results['exact_accuracy']:.4f} over {results['puzzles']} {self.card.unit}; wrote {path}")
        return results

    # ----- solving: puzzles as arguments or --file, the answer after every step
    def solve_inputs(self, puzzles: list[str], options, args) -> np.ndarray:
        if not puzzles and not options.file:
            raise ValueError("give a puzzle or --file")
        if options.file:
            return self.read_file(options.file).questions
        return np.stack([self.parse(text, f"puzzle {k + 1}") for k, text in enumerate(puzzles)])

    def solve_puzzles(self, model, questions: np.ndarray, options, args) -> list[dict]:
        import torch

        side = questions.shape[-1]
        self.fit_to_model(PuzzleSet(questions, questions), model)
        out = model.solve(torch.from_numpy(questions.reshape(len(questions), -1)), max_steps=options.max_steps,
                          return_trace=True)
        trace = out.trace.numpy().reshape(out.trace.shape[0], len(questions), side, side)
        reports = []
        for k, question in enumerate(questions):
            halted = int(out.halted_at[k])
            print(f"\nPuzzle {k + 1}: {self.to_text(question)}")
            if options.trace:
                for step in range(halted):
                    print(f"after step {step + 1}: {self.to_text(trace[step, k])}")
            answer = self.to_text(out.predictions[k].numpy())
            print(f"answer (halted at step {halted}): {answer}")
            reports.append({"answer": answer, "halted_at": halted})
        if options.png:
            self.draw(questions[0], trace[: int(out.halted_at[0]), 0], options.png)
            print(f"\ntrace drawn in {options.png}")
        return reports


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 symmetries of the square (0 is the identity): k % 4 quarter turns, then a transpose if
    k >= 4. Applied to the last two axes."""
    out = np.rot90(grid, k % 4, axes=(-2, -1))
    return np.swapaxes(out, -1, -2) if k >= 4 else out


def undo_dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The inverse of `dihedral(grid, k)`: an answer read in a turned frame, turned back."""
    out = np.swapaxes(grid, -1, -2) if k >= 4 else grid
    return np.rot90(out, -(k % 4), axes=(-2, -1))
