"""Sudoku as a task (`TASK`): LSTM-TRM trained on generated Sudoku (`examples/train.py`, the package's main job) or
Sudoku-Extreme-shaped data (`data.py`); its flags (`arguments.py`), its presets (`presets/<n>x<n>.json`, chosen by
--grid_size or --recipe), its evaluation (TRM's convention, deeper test-time steps, noisy trajectories), its solving
with the trace, and the rated CSV files `examples/make_dataset.py` writes."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from transformers import TrainingArguments

from ...tokenization import build_grid_tokenizer
from ..lstm_trm_recipe import ModelArguments, build_optimizer, read_preset
from ..task import CardText, PuzzleSet, PuzzleTask, Splits
from .arguments import (  # noqa: F401  (SudokuArguments and check_data_flags: imported from here too)
    SudokuArguments,
    SudokuDatasetArguments,
    SudokuEvaluateArguments,
    SudokuSolveArguments,
    check_data_flags,
    check_eval_files,
    eval_files,
)
from .data import EVAL_SUBSAMPLE_SEED, load_splits
from .drawing import accuracy_chart, draw_trace
from .hard_puzzles import generate_hard_puzzles
from .puzzles import (
    BOXES,
    DEFAULT_GIVENS,
    SudokuDataset,
    SudokuSet,
    answer_checker,
    evaluate_model,
    generate_puzzles,
    is_valid_solution,
    parse_puzzles,
    solve_file,
)
from .solving import report_puzzle
from .sudoku_extreme import load_csv_splits, load_trm_folder, write_csv

PRESETS = Path(__file__).parent / "presets"
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


class SudokuTask(PuzzleTask):
    charset = "0123456789"  # token = the digit; 0 a blank (`.` also reads as one). An N x N grid uses 0..N.
    arguments = ARGUMENTS
    evaluate_arguments = SudokuEvaluateArguments
    solve_arguments = SudokuSolveArguments
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

    def check(self, sudoku_args: SudokuArguments, *task_args, training_args: TrainingArguments) -> None:
        super().check(sudoku_args, *task_args, training_args=training_args)
        check_eval_files(sudoku_args)
        check_data_flags(sudoku_args)

    load_puzzles = staticmethod(load_splits)

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

    def example_puzzles(self, side: int, count: int, seed: int) -> PuzzleSet:
        data = generate_puzzles(count, BOXES[side], DEFAULT_GIVENS[side], seed=seed)
        return PuzzleSet(data.puzzles, data.solutions)

    def score(self, model, data: SudokuSet, **options) -> dict:
        return evaluate_model(model, data, **options)

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        with trainer.ema_weights() as model:
            results = {"held_out": self.score(model, splits.test)}
            for path in eval_files(task_args.eval_files, task_args.size):
                results[path.stem] = self.score(model, solve_file(path))
        return results

    def report(self, results: dict, splits: Splits, model, output_dir: Path) -> None:
        held, size = results["held_out"], splits.test.size
        print(f"\nHeld-out {size}x{size} ({held['puzzles']} puzzles, {splits.info['source']}): "
              f"exact {held['exact_accuracy']:.3f} after {model.config.halt_max_steps} steps (TRM's convention), "
              f"{held['exact_accuracy_at_q_halt']:.3f} at the Q head's halt (mean step {held['mean_steps']:.2f})")
        for name, scores in results.items():
            if isinstance(scores, dict) and name != "held_out":
                print(f"{name}: exact {scores['exact_accuracy']:.3f}, blank cells {scores['cell_accuracy']:.3f}")
        print(f"Model saved in {output_dir.resolve()} ({results['train_minutes']} minutes)")
        print(f"Solve a held-out puzzle: python examples/solve.py --model {output_dir} --trace "
              f"{self.example(splits)}", flush=True)

    # ----- evaluation
    def evaluation_data(self, options: SudokuEvaluateArguments, args, model):
        """The puzzles to evaluate on, and a name for the output files."""
        if options.data_dir:
            return "trm_test", load_trm_folder(options.data_dir, "test", options.eval_subsample,
                                               EVAL_SUBSAMPLE_SEED).data
        if options.rated:
            name, hub = options.test_csv()
            return options.source_name(), load_csv_splits(
                {"test": name}, hub, min_rating=options.min_rating, subsample_size=options.eval_subsample,
                seed=EVAL_SUBSAMPLE_SEED)["test"].data
        if options.file:
            return options.source_name(), solve_file(options.file)
        givens = options.givens or DEFAULT_GIVENS[options.grid_size]
        data = generate_puzzles(options.num_puzzles, BOXES[options.grid_size], givens, seed=options.seed)
        return f"generated_{options.grid_size}x{options.grid_size}_{givens}givens", data

    def fit_to_model(self, data: SudokuSet, model):
        if data.size ** 2 != model.config.seq_len:
            raise ValueError(f"the model solves grids of {model.config.seq_len} cells, these have {data.size ** 2}")
        return data

    def evaluation_scores(self, model, data: SudokuSet, options: SudokuEvaluateArguments, args) -> dict:
        return evaluate_model(model, data, batch_size=args.batch_size, max_steps=options.max_steps,
                              num_trajectories=options.num_trajectories, noise_scale=options.noise_scale,
                              seed=options.seed, progress=True)

    def evaluation_report(self, name, data, results, options, path) -> dict:
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
        return results

    # ----- solving
    def solve_inputs(self, puzzles: list[str], options: SudokuSolveArguments, args) -> np.ndarray:
        if not puzzles and not options.file:
            raise ValueError("give a puzzle or --file")
        if options.file and options.file.endswith(".csv"):
            return load_csv_splits({"test": options.file})["test"].data.puzzles
        return parse_puzzles(options.file) if options.file else parse_puzzles(puzzles)

    def solve_puzzles(self, model, grids: np.ndarray, options: SudokuSolveArguments, args) -> list[dict]:
        import torch

        n = grids.shape[-1]
        if n * n != model.config.seq_len:
            side = math.isqrt(model.config.seq_len)
            raise ValueError(f"the model solves {side}x{side} grids, these puzzles are {n}x{n}")
        box = BOXES[n]
        want_trace = options.trace or options.png is not None
        generator = torch.Generator().manual_seed(options.seed)
        reports, first_trace, first_title = [], None, ""
        for begin in range(0, len(grids), args.batch_size):
            batch = grids[begin:begin + args.batch_size]
            result = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)), max_steps=options.max_steps,
                                 return_trace=want_trace, num_trajectories=options.num_trajectories,
                                 noise_scale=options.noise_scale, generator=generator,
                                 answer_checker=answer_checker(box) if options.checker else None)
            if first_trace is None and want_trace:
                first_trace = result.trace[: int(result.halted_at[0]), 0].numpy().reshape(-1, n, n)
                if result.trajectory is not None:
                    first_title = (f"trajectory {int(result.trajectory[0])} of {options.num_trajectories} (the Q "
                                   "head's pick)")
            for k, puzzle in enumerate(batch):
                reports.append(report_puzzle(begin + k, puzzle, result, k, box, options.trace))
        if options.png:
            draw_trace(grids[0], first_trace, [is_valid_solution(g, grids[0], box) for g in first_trace], box,
                       options.png, first_title)
            print(f"\ntrace drawn in {options.png}")
        return reports

    # ----- examples/make_dataset.py
    dataset_arguments = SudokuDatasetArguments

    def write_dataset(self, path: Path, options: SudokuDatasetArguments) -> dict:
        """Minimal 9x9 puzzles rated at least --min_rating (backtracks) in Sudoku-Extreme's CSV shape, so
        `--train_file` / `--test_file` and `evaluate_model.py --file` read them like the Hub data; a summary."""
        started = time.monotonic()
        puzzles, solutions, ratings = generate_hard_puzzles(options.num_puzzles, options.min_rating, seed=options.seed,
                                                            num_workers=options.num_workers, progress=True)
        minutes = (time.monotonic() - started) / 60
        write_csv(path, puzzles, solutions, ratings, source=f"lstm-trm-generated-seed{options.seed}")
        summary = {
            "output": str(path), "puzzles": len(puzzles), "min_rating": options.min_rating, "seed": options.seed,
            "minutes": round(minutes, 2), "puzzles_per_minute": round(len(puzzles) / max(minutes, 1e-9), 1),
            "workers": options.num_workers, "mean_givens": round(float((puzzles > 0).sum((1, 2)).mean()), 2),
            "rating_percentiles": {str(q): float(np.percentile(ratings, q)) for q in (10, 25, 50, 75, 90, 100)}}
        print(f"wrote {len(puzzles)} puzzles to {path} in {minutes:.1f} minutes ({summary['puzzles_per_minute']} per "
              f"minute on {options.num_workers} processes); rating median {np.median(ratings):g}, max "
              f"{ratings.max()}")
        return summary

    # ----- examples/train.py in a checkout of the repository
    def repository_defaults(self, shared_data: Path) -> dict:
        """The main job also scores the public puzzle files of the repository's shared data (`sudoku/`), where a
        checkout has them (the installed package knows no such folder: the command passes it)."""
        folder = shared_data / "sudoku"
        return {"eval_files": [str(folder.resolve())]} if folder.is_dir() else {}


TASK = SudokuTask()
