"""Sudoku as a task (`TASK`): LSTM-TRM trained on generated Sudoku (`examples/train.py`, the package's main job) or
Sudoku-Extreme-shaped data; its flags, its presets (`presets/<n>x<n>.json`, chosen by --grid_size or --recipe), its
evaluation (TRM's convention, deeper test-time steps, noisy trajectories) and its solving command with the trace."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import TrainingArguments

from ...tokenization import build_grid_tokenizer
from ...training.runs import check_max_minutes
from ...training.safety import finite_json
from ..lstm_trm_recipe import ModelArguments, build_optimizer, check_distinct_files, read_preset
from ..task import CardText, PuzzleTask, Splits, output_file
from .drawing import accuracy_chart, draw_trace
from .hard_puzzles import generate_hard_puzzles
from .puzzles import (
    BOXES,
    DEFAULT_GIVENS,
    SudokuDataset,
    SudokuSet,
    answer_checker,
    box_for_size,
    drop_equivalent,
    evaluate_model,
    generate_puzzles,
    is_valid_solution,
    parse_puzzles,
    solve_file,
    train_test_split,
)
from .sudoku_extreme import HUB_DATASET, load_csv_splits, load_trm_folder

PRESETS = Path(__file__).parent / "presets"
EVAL_SUBSAMPLE_SEED = 20251  # one fixed test subset whatever --seed the training uses


@dataclass
class SudokuArguments:
    grid_size: int | None = field(default=None, metadata={
        "help": "4, 6 or 9: picks the preset (presets/<n>x<n>.json); default 6, or 9 with a dataset or --recipe hard."})
    recipe: str | None = field(default=None, metadata={
        "aliases": ["--preset"],
        "help": "Train with another preset: a grid size (e.g. --grid_size 9 --recipe 6: the 6x6 CPU recipe on 9x9) "
                "or `hard` (9x9 minimal puzzles rated by backtracks: generated, or from the dataset flags)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": f"Sudoku-Extreme-shaped data: a Hub dataset (e.g. {HUB_DATASET}) or a local folder holding "
                "train.csv and test.csv (header source,question,answer,rating)."})
    train_file: str | None = field(default=None, metadata={"help": "A training CSV file of that shape."})
    test_file: str | None = field(default=None, metadata={"help": "A test CSV file of that shape."})
    data_dir: str | None = field(default=None, metadata={
        "help": "A folder built by TRM's build_sudoku_dataset.py ({train,test}/all__inputs.npy, ...)."})
    subsample_size: int | None = field(default=None, metadata={
        "help": "Train on this many puzzles of the training split, drawn with --seed (TRM: 1000)."})
    min_rating: int | None = field(default=None, metadata={
        "help": "Only puzzles rated at least this (backtracks), in both splits; with --recipe hard and no dataset, "
                "the rating of the puzzles generated."})
    eval_subsample: int | None = field(default=None, metadata={
        "help": "Evaluate on this many puzzles of the test split, drawn with a fixed seed (default: all of it)."})
    drop_invalid: bool = field(default=False, metadata={
        "help": "Drop malformed dataset rows and count them, instead of stopping at the first."})
    givens: int | None = field(default=None, metadata={"help": "Filled cells per puzzle (default 6 / 14 / 30)."})
    train_puzzles: int | None = field(default=None, metadata={"help": "Base puzzles; augmented on the fly."})
    eval_puzzles: int = field(default=512, metadata={"help": "Held-out generated puzzles for evaluation."})
    eval_files: list[str] = field(default_factory=list, metadata={
        "help": "Puzzle files to evaluate on at the end; a folder stands for its *.txt files of this grid size "
                "(examples/train.py's default: the repository's ../shared/data/sudoku where it exists; `none` for "
                "none)."})
    max_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes (the 6x6 preset stops at 13 so the job fits in 15)."})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    puzzle_emb_lr: float | None = field(default=None, metadata={"help": "Learning rate of the puzzle embeddings."})
    puzzle_emb_weight_decay: float | None = field(default=None, metadata={"help": "Their weight decay."})
    num_threads: int | None = field(default=None, metadata={
        "help": "PyTorch CPU threads per process (default: this machine's cores divided among its processes; "
                "`accelerate launch` without a config would otherwise leave each process one thread)."})

    def uses_dataset(self) -> bool:
        return any((self.dataset_name, self.train_file, self.test_file, self.data_dir))

    @property
    def size(self) -> int:
        """The grid size: --grid_size, else 9 for a dataset or the hard recipe, else 6."""
        if self.grid_size is not None:
            return self.grid_size
        return 9 if self.uses_dataset() or self.recipe == "hard" else 6


ARGUMENTS = (SudokuArguments, ModelArguments)


def preset_defaults(sudoku_args: SudokuArguments, model_args: ModelArguments) -> dict:
    if sudoku_args.grid_size is not None and sudoku_args.grid_size not in BOXES:
        raise ValueError(f"--grid_size must be one of {sorted(BOXES)}, got {sudoku_args.grid_size}")
    recipes = [str(n) for n in BOXES] + ["hard"]
    if sudoku_args.recipe is not None and sudoku_args.recipe not in recipes:
        raise ValueError(f"--recipe must be one of {', '.join(recipes)}, got {sudoku_args.recipe}")
    size = sudoku_args.size
    recipe = sudoku_args.recipe or str(size)
    name = "hard" if recipe == "hard" else f"{size}x{size}"
    return read_preset(PRESETS / (f"{recipe}x{recipe}.json" if recipe.isdigit() else f"{recipe}.json"),
                       f"outputs/lstm-trm-sudoku-{name}")


def eval_files(names: list[str], size: int) -> list[Path]:
    """The --eval_files: files as given, a folder as its *.txt files of puzzles of this size; `none` for none."""
    files = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.glob("*.txt") if _puzzle_size(p) == size)
        elif name != "none":
            files.append(path)
    return files


def _puzzle_size(path: Path) -> int | None:
    for line in path.read_text().splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            return round(len(text) ** 0.5)
    return None


def check(sudoku_args: SudokuArguments, model_args: ModelArguments, training_args: TrainingArguments) -> None:
    check_max_minutes(sudoku_args.max_minutes)
    for flag in ("train_puzzles", "eval_puzzles"):
        if getattr(sudoku_args, flag) is not None and getattr(sudoku_args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(sudoku_args, flag)}")
    filed_as: dict[str, str] = {}
    for name in map(str, eval_files(sudoku_args.eval_files, sudoku_args.size)):
        if not Path(name).is_file():
            raise ValueError(f"--eval_files: no such file: {name}")
        if parse_puzzles(name).shape[-1] != sudoku_args.size:  # every line, now rather than after training
            raise ValueError(f"--eval_files: {name} does not hold {sudoku_args.size}x{sudoku_args.size} "
                             "puzzles (see --grid_size)")
        key = Path(name).stem  # the file's results are filed under its name
        if key in RESULT_KEYS or key in filed_as:
            taken = f"the run's own '{key}' result" if key in RESULT_KEYS else filed_as[key]
            raise ValueError(f"--eval_files: {name} would be reported as '{key}', like {taken}: rename the file")
        filed_as[key] = name
    check_data_flags(sudoku_args)


def check_data_flags(args: SudokuArguments) -> None:
    for flag in ("subsample_size", "eval_subsample"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    sources = [flag for flag in ("dataset_name", "data_dir") if getattr(args, flag)]
    if args.train_file or args.test_file:
        sources.append("train_file")
        if not (args.train_file and args.test_file):
            raise ValueError("--train_file and --test_file go together (a training and a test CSV file)")
    if len(sources) > 1:
        raise ValueError(f"give one data source: --{' or --'.join(sources)}")
    if args.uses_dataset() and args.size != 9:
        raise ValueError(f"Sudoku-Extreme data is 9x9: --grid_size {args.grid_size} does not fit")
    if args.recipe == "hard" and args.size != 9:
        raise ValueError(f"--recipe hard is 9x9: --grid_size {args.grid_size} does not fit")
    if args.data_dir and args.min_rating is not None:
        raise ValueError("--min_rating needs the ratings of a CSV dataset; a TRM folder (--data_dir) has none")
    for flag in ("train_file", "test_file", "data_dir"):
        path = getattr(args, flag)
        if path and not (Path(path).is_dir() if flag == "data_dir" else Path(path).is_file()):
            raise ValueError(f"--{flag}: no such {'folder' if flag == 'data_dir' else 'file'}: {path}")
    check_distinct_files(args.train_file, args.test_file)
    if not args.uses_dataset() and (args.subsample_size or args.eval_subsample or args.drop_invalid):
        raise ValueError("--subsample_size, --eval_subsample and --drop_invalid select rows of a dataset "
                         "(--dataset_name, --train_file/--test_file or --data_dir); generated puzzles are set by "
                         "--train_puzzles and --eval_puzzles")
    if args.min_rating is not None and not args.uses_dataset() and args.recipe != "hard":
        raise ValueError("--min_rating selects dataset rows or, with --recipe hard, the puzzles generated")


def load_splits(args: SudokuArguments, seed: int, is_main: bool) -> Splits:
    """The training puzzles, the held-out puzzles, and what was read: from the dataset flags, generated minimal
    puzzles (--recipe hard), or generated puzzles with a fixed number of givens."""
    size = args.size
    box = box_for_size(size)
    if args.data_dir:
        train = load_trm_folder(args.data_dir, "train", args.subsample_size, seed)
        test = load_trm_folder(args.data_dir, "test", args.eval_subsample, EVAL_SUBSAMPLE_SEED)
    elif args.uses_dataset():
        if args.dataset_name and Path(args.dataset_name).is_dir():
            files, hub = {s: str(Path(args.dataset_name) / f"{s}.csv") for s in ("train", "test")}, None
        elif args.dataset_name:
            files, hub = {"train": "train.csv", "test": "test.csv"}, args.dataset_name
        else:
            files, hub = {"train": args.train_file, "test": args.test_file}, None
        splits = load_csv_splits(files, hub, min_rating=args.min_rating, drop_invalid=args.drop_invalid,
                                 subsample_size={"train": args.subsample_size, "test": args.eval_subsample},
                                 seed={"train": seed, "test": EVAL_SUBSAMPLE_SEED})
        train, test = splits["train"], splits["test"]
    elif args.recipe == "hard":
        rating = args.min_rating or 0
        if is_main:
            print(f"Generating {args.train_puzzles} training and {args.eval_puzzles} held-out minimal 9x9 puzzles "
                  f"rated at least {rating} (examples/make_dataset.py writes such sets to a file once)...", flush=True)
        workers = os.cpu_count() or 1
        made = [generate_hard_puzzles(n, rating, seed=seed + offset, num_workers=workers, progress=is_main)
                for n, offset in ((args.train_puzzles, 0), (args.eval_puzzles, 1_000_003))]
        train_set, test_set = (SudokuSet(p, s, box, ratings=r) for p, s, r in made)
        return Splits(train_set, drop_equivalent(test_set, train_set),
                      {"source": f"generated minimal, rating >= {rating}"})
    else:
        givens = args.givens or DEFAULT_GIVENS[size]
        if is_main:
            print(f"Generating {args.train_puzzles} training and {args.eval_puzzles} held-out {size}x{size} puzzles "
                  f"with {givens} givens...", flush=True)
        train_set, test_set = train_test_split(args.train_puzzles, args.eval_puzzles, box, givens, seed=seed)
        return Splits(train_set, test_set, {"source": f"generated, {givens} givens"})
    source = args.data_dir or args.dataset_name or f"{args.train_file}, {args.test_file}"
    info = {"source": source, **{f"{name}_{key}": value for name, split in (("train", train), ("test", test))
                                 for key, value in vars(split).items() if key != "data"}}
    if is_main:
        print(f"Data from {source}: {len(train.data)} training puzzles (of {train.rows} rows), {len(test.data)} test "
              f"puzzles (of {test.rows})" + (f"; dropped as invalid: {train.dropped_invalid} + {test.dropped_invalid}"
                                              if args.drop_invalid else ""), flush=True)
    return Splits(train.data, test.data, info)


RESULT_KEYS = ("held_out", "train_minutes", "train_steps")  # what a run reports besides its --eval_files


class SudokuTask(PuzzleTask):
    charset = "0123456789"  # token = the digit; 0 a blank (`.` also reads as one). An N x N grid uses 0..N.
    arguments = ARGUMENTS
    card = CardText(
        title="{size}x{size} Sudoku", task_type="sudoku-solving", task_name="Sudoku solving", tag="sudoku",
        second=("cell_accuracy", "Blank-cell accuracy"), unit="puzzles", input_hint="0 or . for a blank",
        augmentation="digit, row, band, column and stack permutations and transposition",
        limitations="accuracy drops on puzzles much harder than those (fewer givens, long chains of deductions). An "
                    "answer is not checked by the model: verify it (`modeling_lstm_trm.tasks.sudoku.puzzles."
                    "is_valid_solution` or any solver).")

    def vocabulary(self, side: int) -> str:
        return self.charset[:side + 1]

    preset_defaults = staticmethod(preset_defaults)
    check = staticmethod(check)
    load = staticmethod(load_splits)

    def training_data(self, data: SudokuSet, length: int, seed: int, task_args):
        return SudokuDataset(data, length=length, seed=seed)

    def optimizer(self, model, task_args, training_args):
        if not model.config.puzzle_emb_ndim or (task_args.puzzle_emb_lr is None
                                                and task_args.puzzle_emb_weight_decay is None):
            return None
        return build_optimizer(model, training_args, task_args.puzzle_emb_lr, task_args.puzzle_emb_weight_decay)

    def tokenizer(self, side: int):
        return build_grid_tokenizer(side)

    trm_extra_tokens = 1  # TRM's Sudoku is pad 0, blank 1, digits 2-10; ours blank 0, digits 1-9

    def from_trm(self, model, data_dir: str | None = None):
        """TRM's ids made ours: the pad row of the embedding and of the answer head is dropped, so our token k is
        TRM's k + 1 (a pad never reaches a Sudoku grid, and an answer is never pad)."""
        model, write = super().from_trm(model, data_dir)
        config = model.config.to_dict()
        config.update(vocab_size=model.config.vocab_size - 1)
        state = model.state_dict()
        for name in ("model.embed_tokens.weight", "lm_head.weight"):
            state[name] = state[name][1:]
        smaller = type(model)(type(model.config).from_dict(config))
        smaller.load_state_dict(state, strict=True)
        return smaller.eval(), write

    def to_text(self, grid) -> str:
        return "".join(map(str, np.asarray(grid).reshape(-1))).replace("0", ".")

    def score(self, model, data: SudokuSet, **options) -> dict:
        return evaluate_model(model, data, **options)

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        with trainer.ema_weights() as model:
            results = {"held_out": self.score(model, splits.test)}
            for path in eval_files(task_args.eval_files, task_args.size):
                results[path.stem] = self.score(model, solve_file(path))
        return results

    def report(self, results: dict, splits: Splits, config, output_dir: Path) -> None:
        held, size = results["held_out"], splits.test.size
        print(f"\nHeld-out {size}x{size} ({held['puzzles']} puzzles, {splits.info['source']}): "
              f"exact {held['exact_accuracy']:.3f} after {config.halt_max_steps} steps (TRM's convention), "
              f"{held['exact_accuracy_at_q_halt']:.3f} at the Q head's halt (mean step {held['mean_steps']:.2f})")
        for name, scores in results.items():
            if isinstance(scores, dict) and name != "held_out":
                print(f"{name}: exact {scores['exact_accuracy']:.3f}, blank cells {scores['cell_accuracy']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)")
        print(f"Solve a held-out puzzle: python examples/solve.py --model {output_dir} --trace "
              f"{self.example(splits)}", flush=True)

    # ----- examples/evaluate_model.py
    def add_evaluate_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="a puzzle file: one per line (0 or . for a blank), or a CSV file of "
                                           "Sudoku-Extreme's shape")
        source.add_argument("--grid_size", type=int, help="evaluate on generated puzzles of this size (4, 6, 9)")
        source.add_argument("--dataset_name", help="a Sudoku-Extreme-shaped Hub dataset or local folder (test.csv)")
        source.add_argument("--data_dir", help="a TRM prebuilt folder (its test split)")
        parser.add_argument("--num_puzzles", type=int, default=1000, help="generated puzzles")
        parser.add_argument("--givens", type=int, help="givens of generated puzzles (default 6 / 14 / 30)")
        parser.add_argument("--seed", type=int, default=2024, help="seed of generated puzzles (training used others)")
        parser.add_argument("--min_rating", type=int, help="CSV data: only puzzles rated at least this")
        parser.add_argument("--eval_subsample", type=int, help="datasets: a fixed, seeded subset of this many")
        parser.add_argument("--max_steps", type=int, nargs="+",
                            help="supervision-step depths to score (default: the model's halt_max_steps)")
        parser.add_argument("--num_trajectories", type=int, default=1,
                            help="noisy trajectories per puzzle, picked by the Q head and by the checker")
        parser.add_argument("--noise_scale", type=float, default=0.5, help="std of the trajectories' initial noise")

    def evaluation_data(self, args):
        """The puzzles to evaluate on, and a name for the output files."""
        if args.data_dir:
            return load_trm_folder(args.data_dir, "test", args.eval_subsample, EVAL_SUBSAMPLE_SEED).data, "trm_test"
        if args.dataset_name or (args.file and args.file.endswith(".csv")):
            local = args.dataset_name and Path(args.dataset_name).is_dir()
            name = (str(Path(args.dataset_name) / "test.csv") if local else "test.csv" if args.dataset_name
                    else args.file)
            split = load_csv_splits({"test": name}, None if local or not args.dataset_name else args.dataset_name,
                                    min_rating=args.min_rating, subsample_size=args.eval_subsample,
                                    seed=EVAL_SUBSAMPLE_SEED)["test"]
            return split.data, Path(args.file).stem if args.file else Path(args.dataset_name).name
        if args.file:
            return solve_file(args.file), Path(args.file).stem
        givens = args.givens or DEFAULT_GIVENS[args.grid_size]
        data = generate_puzzles(args.num_puzzles, BOXES[args.grid_size], givens, seed=args.seed)
        return data, f"generated_{args.grid_size}x{args.grid_size}_{givens}givens"

    def evaluate(self, args, parser) -> dict:
        from ...loading import load_model

        if args.grid_size is not None and args.grid_size not in BOXES:
            parser.error(f"--grid_size must be one of {sorted(BOXES)} for Sudoku, got {args.grid_size}")
        if args.num_puzzles < 1 or args.num_trajectories < 1 or not 0 <= args.noise_scale < math.inf \
                or any(d < 1 for d in args.max_steps or []):
            parser.error("--num_puzzles, --num_trajectories and --max_steps must be at least 1, --noise_scale a "
                         "finite number >= 0")
        if args.min_rating is not None and not (args.dataset_name or (args.file or "").endswith(".csv")):
            parser.error("--min_rating filters rated CSV data (--file X.csv or --dataset_name): these puzzles have no "
                         "rating")
        model = load_model(args.model, trust_remote_code=args.trust_remote_code)
        try:
            data, name = self.evaluation_data(args)
        except ValueError as error:
            parser.error(str(error))
        if data.size ** 2 != model.config.seq_len:
            parser.error(f"the model solves grids of {model.config.seq_len} cells, these have {data.size ** 2}")
        path = output_file(args, name, ".json", parser)
        results = evaluate_model(model, data, batch_size=args.batch_size, max_steps=args.max_steps,
                                 num_trajectories=args.num_trajectories, noise_scale=args.noise_scale, seed=args.seed,
                                 progress=True)
        path.write_text(json.dumps(finite_json(results), indent=2))
        chart = path.with_suffix(".png")
        accuracy_chart(results, name, chart)
        print(f"\n{name}, {results['puzzles']} puzzles: exact-puzzle accuracy by supervision steps")
        print("| steps | exact (all steps run) | exact at the Q head's halt | mean halting step | blank cells |")
        print("|---|---|---|---|---|")
        for depth, scores in (results.get("by_max_steps") or {str(results["max_steps"]): results}).items():
            print(f"| {depth} | {scores['exact_accuracy']:.4f} | {scores['exact_accuracy_at_q_halt']:.4f} | "
                  f"{scores['mean_steps']:.2f} | {scores['cell_accuracy']:.4f} |")
        if "trajectories" in results:
            t = results["trajectories"]
            print(f"{t['num_trajectories']} trajectories (noise {t['noise_scale']}), {t['max_steps']} steps: exact "
                  f"{t['q_head']['exact_accuracy']:.4f} picked by the Q head; {t['checker']['exact_accuracy']:.4f} "
                  "picked by the checker (a valid grid keeping the givens: our addition, not TRM's)")
        print(f"wrote {path} and {chart}")
        print(json.dumps(finite_json(results)))
        return results

    # ----- examples/solve.py
    def add_solve_arguments(self, parser) -> None:
        parser.add_argument("puzzles", nargs="*", help="puzzles, N*N characters each (0 or . for a blank)")
        parser.add_argument("--file", help="a file of puzzles, one per line (// starts a comment), or a CSV file of "
                                           "Sudoku-Extreme's shape")
        parser.add_argument("--trace", action="store_true", help="print the grid after every supervision step")
        parser.add_argument("--png", help="draw the trace of the first puzzle into this PNG file")
        parser.add_argument("--max_steps", type=int, help="supervision steps at most (default: the model's)")
        parser.add_argument("--num_trajectories", type=int, default=1, help="noisy trajectories per puzzle")
        parser.add_argument("--noise_scale", type=float, default=0.5, help="std of their initial noise")
        parser.add_argument("--checker", action="store_true", help="also pick a trajectory whose answer checks out")
        parser.add_argument("--seed", type=int, default=0, help="seed of the trajectories' noise")

    def solve(self, args, parser) -> list[dict]:
        import torch

        from ...loading import load_model

        if args.num_trajectories < 1 or (args.max_steps is not None and args.max_steps < 1):  # --batch_size: cli
            parser.error("--num_trajectories and --max_steps must be at least 1")
        if not 0 <= args.noise_scale < math.inf:
            parser.error(f"--noise_scale must be a finite number >= 0, got {args.noise_scale}")
        if not args.puzzles and not args.file:
            parser.error("give a puzzle or --file")
        try:
            if args.file and args.file.endswith(".csv"):
                grids = load_csv_splits({"test": args.file})["test"].data.puzzles
            else:
                grids = parse_puzzles(args.file) if args.file else parse_puzzles(args.puzzles)
        except ValueError as error:
            parser.error(str(error))
        model = load_model(args.model, trust_remote_code=args.trust_remote_code)
        n = grids.shape[-1]
        if n * n != model.config.seq_len:
            side = math.isqrt(model.config.seq_len)
            parser.error(f"the model solves {side}x{side} grids, these puzzles are {n}x{n}")
        box = BOXES[n]
        want_trace = args.trace or args.png is not None
        generator = torch.Generator().manual_seed(args.seed)
        reports, first_trace, first_title = [], None, ""
        for begin in range(0, len(grids), args.batch_size):
            batch = grids[begin:begin + args.batch_size]
            result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=args.max_steps,
                                 return_trace=want_trace, num_trajectories=args.num_trajectories,
                                 noise_scale=args.noise_scale, generator=generator,
                                 answer_checker=answer_checker(box) if args.checker else None)
            if first_trace is None and want_trace:
                first_trace = result.trace[: int(result.halted_at[0]), 0].numpy().reshape(-1, n, n)
                if result.trajectory is not None:
                    first_title = (f"trajectory {int(result.trajectory[0])} of {args.num_trajectories} (the Q head's "
                                   "pick)")
            for k, puzzle in enumerate(batch):
                reports.append(report_puzzle(begin + k, puzzle, result, k, box, args.trace))
        if args.png:
            draw_trace(grids[0], first_trace, [is_valid_solution(g, grids[0], box) for g in first_trace], box,
                       args.png, first_title)
            print(f"\ntrace drawn in {args.png}")
        return reports


TASK = SudokuTask()


def format_grid(grid: np.ndarray, box, marks: np.ndarray | None = None) -> str:
    """The grid as text with box rules; cells in `marks` are shown as [d]."""
    n = grid.shape[0]
    br, bc = box
    lines = []
    for r in range(n):
        if r and r % br == 0:
            lines.append("+".join(["-" * (3 * bc)] * br))
        cells = []
        for c in range(n):
            text = str(grid[r, c]) if grid[r, c] else "."
            cells.append(f"[{text}]" if marks is not None and marks[r, c] else f" {text} ")
            if c % bc == bc - 1 and c < n - 1:
                cells.append("|")
        lines.append("".join(cells))
    return "\n".join(lines)


def report_puzzle(index: int, puzzle: np.ndarray, result, k: int, box, trace: bool) -> dict:
    """Print puzzle `index` (row k of `result`): the puzzle, its trace if asked, the solution, whether it is valid."""
    n = puzzle.shape[0]
    solved = result.predictions[k].numpy().reshape(n, n)
    valid = is_valid_solution(solved, puzzle, box)
    halted = int(result.halted_at[k])
    print(f"\nPuzzle {index + 1}:\n{format_grid(puzzle, box)}")
    if trace:
        previous = puzzle
        for step in range(halted):
            grid = result.trace[step, k].numpy().reshape(n, n)
            print(f"\nafter supervision step {step + 1} ([d] = changed):")
            print(format_grid(grid, box, marks=(grid != previous) & (puzzle == 0)))
            previous = grid
    chosen = "" if result.trajectory is None else f", trajectory {int(result.trajectory[k])} (the Q head's pick)"
    print(f"\nSolution (halted at step {halted}{chosen}):\n{format_grid(solved, box)}")
    print("valid and consistent with the givens" if valid else "NOT a valid solution")
    out = {"valid": valid, "halted_at": halted, "solution": "".join(map(str, solved.reshape(-1)))}
    if result.trajectory is not None:
        out["trajectory"] = int(result.trajectory[k])
    if result.checked_predictions is not None:
        checked = result.checked_predictions[k].numpy().reshape(n, n)
        out["checker_valid"] = is_valid_solution(checked, puzzle, box)
        if not np.array_equal(checked, solved):
            print(f"the checker's pick (a trajectory whose answer checks out) differs:\n{format_grid(checked, box)}")
        print("the checker found a valid trajectory" if out["checker_valid"] else "no trajectory's answer checks out")
    return out
