"""Evaluate a trained model: the nested LM on a text file, or LSTM-TRM on Sudoku puzzles (the task follows the
model's config unless --task says otherwise).

    python examples/evaluate_model.py --model D --file ../shared/data/wikitext-2-heldout/test.txt
    python examples/evaluate_model.py --model D --file ../shared/data/sudoku/easy_50.txt
    python examples/evaluate_model.py --model D --grid_size 6 --num_puzzles 1000
    python examples/evaluate_model.py --model D --file hard.csv --max_steps 16 32 64 --num_trajectories 8
    python examples/evaluate_model.py --model D --dataset_name sapientinc/sudoku-extreme --eval_subsample 1000

Language model: the file is tokenized with the model's tokenizer and read as one stream, in order, the state carried
across chunks and reset where a document starts (WikiText titles for a WikiText file, else the file is one
document); every token after the first is a target. Prints perplexity, bits per token and per character.
`--online_levels all|slow|1,2,3` lets the model learn while it reads (training/online.py): each chunk of
--block_size tokens is scored, then learned from, each level stepping every --online_periods chunks; a copy learns,
the model folder is never written.

Sudoku: puzzles from a text file (solutions computed by the solver), a CSV file or dataset of Sudoku-Extreme's
shape, a TRM prebuilt folder, or generated. Scores by TRM's convention: exact-puzzle and blank-cell accuracy after
every puzzle ran `halt_max_steps` supervision steps, and beside them the same at the step where the Q head halts
(with the mean of that step). `--max_steps 16 32 64` scores each depth (test-time steps beyond training's);
`--num_trajectories K` adds K noisy trajectories per puzzle, picked by the Q head and, separately, by a checker
(a valid grid that keeps the givens). Prints a table, writes `eval_<name>.json` and a chart `eval_<name>.png`
(into --output_dir, default the model folder).

ARC: `--task arc --data_dir D --split S` scores a split whose tasks the model trained on, as the competition does
(voted over every version; pass@1, pass@2) and writes `eval_arc_<split>.json` and `submission_<split>.json` (the
training run's own `submission.json` stays as it is); a split without solutions (a hidden test) gets the submission
alone.

Either way the last line printed is the JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.hub import EVAL_FILE, RUN_FILE
from modeling_lstm_trm.loading import load_model, load_tokenizer, read_config, task_of
from modeling_lstm_trm.tasks.sudoku.puzzles import BOXES, DEFAULT_GIVENS, evaluate_model, generate_puzzles, solve_file
from modeling_lstm_trm.tasks.sudoku.recipe import EVAL_SUBSAMPLE_SEED
from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import load_csv_splits, load_trm_folder
from modeling_lstm_trm.tasks.text.recipe import check_text_file
from modeling_lstm_trm.tasks.text.streams import auto_boundary, encode_corpus, evaluate_stream, rows_to_documents
from modeling_lstm_trm.training.online import OnlineLearner, add_online_arguments, online_settings
from modeling_lstm_trm.training.safety import finite_json


def sudoku_chart(results: dict, title: str, path: Path) -> None:
    """Exact accuracy after each depth and at the Q head's halt within it (a line per rule when several depths were
    asked, else bars), with the K-trajectory picks as points at halt_max_steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    depths = results.get("by_max_steps") or {str(results["max_steps"]): results}
    steps = [int(d) for d in depths]
    for key, label, color in (("exact_accuracy", "after max steps (TRM's convention)", "#1f5fbf"),
                              ("exact_accuracy_at_q_halt", "at the Q head's halt", "#2f9f5f")):
        values = [depths[d][key] for d in depths]
        ax.plot(steps, values, "o-", color=color, label=label)
        for x, y in zip(steps, values):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    trajectories = results.get("trajectories")
    if trajectories:
        k = trajectories["num_trajectories"]
        for rule, marker, label in (("q_head", "s", f"K={k} trajectories, Q head picks"),
                                    ("checker", "^", f"K={k} trajectories, checker picks (not TRM's)")):
            ax.plot([trajectories["max_steps"]], [trajectories[rule]["exact_accuracy"]], marker, ms=8, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(x) for x in steps])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("supervision steps at test time")
    ax.set_ylabel("exact-puzzle accuracy")
    ax.set_title(f"{title}: {results['puzzles']} puzzles", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["lm", "sudoku", "maze", "arc"],
                        help="default: from the model's folder (its config and training_run.json)")
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py (or a Hub id)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a text file (LM), or a puzzle file: one per line (0 or . for a blank), or a "
                                       "CSV file of Sudoku-Extreme's shape")
    source.add_argument("--grid_size", type=int, help="evaluate on generated puzzles of this size (Sudoku: 4, 6, 9; "
                                                                  "mazes: any side up to the model's canvas)")
    source.add_argument("--dataset_name", help="Sudoku: a Sudoku-Extreme-shaped Hub dataset or local folder (test.csv)")
    source.add_argument("--data_dir", help="Sudoku: a TRM prebuilt folder (its test split); ARC: the folder of the "
                                           "ARC Prize files")
    parser.add_argument("--split", help="ARC: the split to score (default: the training run's test split); without "
                                        "its solutions file, only submission.json is written")
    parser.add_argument("--num_puzzles", type=int, default=1000)
    parser.add_argument("--givens", type=int, help="givens of generated puzzles (default 6 / 14 / 30)")
    parser.add_argument("--min_path_length", type=int, default=8, help="maze: shortest path of generated mazes")
    parser.add_argument("--seed", type=int, default=2024, help="seed of generated puzzles (training used others)")
    parser.add_argument("--min_rating", type=int, help="Sudoku CSV data: only puzzles rated at least this")
    parser.add_argument("--eval_subsample", type=int, help="Sudoku datasets: a fixed, seeded subset of this many")
    parser.add_argument("--max_steps", type=int, nargs="+",
                        help="Sudoku: supervision-step depths to score (default: the model's halt_max_steps)")
    parser.add_argument("--num_trajectories", type=int, default=1,
                        help="Sudoku: noisy trajectories per puzzle, picked by the Q head and by the checker")
    parser.add_argument("--noise_scale", type=float, default=0.5, help="std of the trajectories' initial noise")
    parser.add_argument("--fixed_point_steps", type=int, help="maze: also stop a maze whose answer held this many "
                                                              "steps (or the Q head halts), up to --max_steps")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", help="where to write the JSON and the chart (default: the model folder)")
    parser.add_argument("--document_boundary", default="auto", help="LM: auto, none, rows, wikitext or a regex")
    parser.add_argument("--block_size", type=int, default=512, help="LM: tokens per forward call")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    add_online_arguments(parser)
    args = parser.parse_args(argv)

    if args.file and not Path(args.file).is_file():
        parser.error(f"--file: no such file: {args.file}")
    for flag in ("num_puzzles", "batch_size", "block_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    try:
        task = task_of(args.model, args.task)
    except ValueError as error:
        parser.error(str(error))
    if args.fixed_point_steps is not None and task != "maze":
        parser.error(f"--fixed_point_steps stops mazes (--task maze); this model is evaluated on {task}")
    if task == "lm":
        if args.dataset_name or args.data_dir:
            parser.error("evaluating a language model needs --file (--dataset_name and --data_dir are Sudoku data)")
        if not args.file:
            parser.error("evaluating a language model needs --file")
        return evaluate_lm(args, parser)
    if task == "maze":
        return evaluate_maze(args, parser)
    if task == "arc":
        return evaluate_arc_split(args, parser)
    return evaluate_sudoku(args, parser)


def output_file(args, name: str, suffix: str, parser) -> Path:
    """`eval_<name><suffix>` in --output_dir (default: the model folder), created if need be; never one of the files
    the training run wrote, which its card and the Hub upload read."""
    out = Path(args.output_dir or (args.model if Path(args.model).is_dir() else "."))
    path = out / f"eval_{name}{suffix}"
    if path.name == EVAL_FILE and (out / RUN_FILE).is_file():
        parser.error(f"these results would go to {path}, which holds the training run's own results: pass "
                     "--output_dir, or give the data file another name")
    out.mkdir(parents=True, exist_ok=True)
    return path


def evaluate_arc_split(args, parser) -> dict:
    """pass@1 / pass@2 of an ARC model on a split whose tasks it trained on (their demonstration pairs), voted over
    every version it knows, and the competition's submission.json."""
    from modeling_lstm_trm.tasks.arc.arc_data import load_split
    from modeling_lstm_trm.tasks.arc.arc_dataset import trained_versions
    from modeling_lstm_trm.tasks.arc.evaluation import evaluate_arc
    from modeling_lstm_trm.tasks.arc.voting import write_submission

    try:
        versions, side, split = trained_versions(args.model, args.data_dir, args.split)
        tasks = load_split(args.data_dir, split, need_solutions=False)
    except ValueError as error:
        parser.error(str(error))
    unknown = sorted(set(tasks) - set(versions.tasks))
    if unknown:
        parser.error(f"the model was not trained on {len(unknown)} of the {len(tasks)} tasks of {split} (first: "
                     f"{unknown[0]}): it knows a task only through its demonstration pairs")
    scores = output_file(args, f"arc_{split}", ".json", parser)
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    results, submission = evaluate_arc(model, versions, sorted(tasks), side, args.batch_size)
    path = write_submission(submission, scores.parent, f"submission_{split}.json")  # the run's submission.json stays
    summary = {key: value for key, value in results.items() if key != "per_task"}
    scores.write_text(json.dumps(finite_json(results), indent=2))
    print(f"{split}: pass@1 {results['pass@1']:.4f}, pass@2 {results['pass@2']:.4f} over {results['tasks']} scored "
          f"tasks; {path} holds both attempts for all {len(tasks)}")
    print(json.dumps(finite_json(summary)))
    return summary


def evaluate_maze(args, parser) -> dict:
    """Exact and valid-shortest-path accuracy on a Maze-Hard CSV file or dataset, a TRM folder, or generated mazes
    (--grid_size, --min_path_length, --num_puzzles, --seed)."""
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet
    from modeling_lstm_trm.tasks.maze.maze_hard import load_csv_splits as load_maze_csv
    from modeling_lstm_trm.tasks.maze.maze_hard import load_trm_folder as load_maze_folder
    from modeling_lstm_trm.tasks.maze.mazes import evaluate_mazes, generate_mazes

    if len(args.max_steps or []) > 1 or args.num_trajectories != 1:
        parser.error("maze evaluation scores one depth with one trajectory: give --max_steps once and no "
                     "--num_trajectories")
    if args.max_steps and args.max_steps[0] < 1:
        parser.error("--max_steps must be at least 1")
    if args.fixed_point_steps is not None and args.fixed_point_steps < 1:
        parser.error("--fixed_point_steps must be at least 1")
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    try:
        if args.data_dir:
            data, name = load_maze_folder(args.data_dir, "test"), "trm_test"
        elif args.dataset_name:
            local = Path(args.dataset_name).is_dir()
            path = str(Path(args.dataset_name) / "test.csv") if local else "test.csv"
            data = load_maze_csv({"test": path}, None if local else args.dataset_name)["test"]
            name = Path(args.dataset_name).name
        elif args.file:
            data, name = load_maze_csv({"test": args.file})["test"], Path(args.file).stem
        else:
            size = args.grid_size
            data = MazeSet(*generate_mazes(args.num_puzzles, size, args.min_path_length, seed=args.seed))
            name = f"generated_{size}x{size}_path{args.min_path_length}"
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
    results = evaluate_mazes(model, data.questions, data.answers, batch_size=args.batch_size,
                             max_steps=(args.max_steps or [None])[0], fixed_point_steps=args.fixed_point_steps)
    path.write_text(json.dumps(finite_json(results), indent=2))
    print(f"{name}: exact {results['exact_accuracy']:.4f}, valid shortest path "
          f"{results['valid_shortest_path_accuracy']:.4f} over {results['mazes']} mazes")
    if args.fixed_point_steps:
        print(f"stopping at a fixed point of {args.fixed_point_steps} steps (or the Q head's halt): exact "
              f"{results['exact_accuracy_at_stop']:.4f} after {results['mean_stop_step']:.2f} steps on average")
    print(json.dumps(finite_json(results)))
    return results


def evaluate_lm(args, parser) -> dict:
    try:
        check_text_file(args.file, "--file")
        settings = online_settings(args, read_config(args.model))
    except ValueError as error:
        parser.error(str(error))
    model = load_model(args.model, causal_lm=True, trust_remote_code=args.trust_remote_code)
    tokenizer = load_tokenizer(args.model, model, trust_remote_code=args.trust_remote_code)
    text = Path(args.file).read_text(encoding="utf-8")
    boundary = auto_boundary(args.file) if args.document_boundary == "auto" else args.document_boundary
    documents = rows_to_documents(text.splitlines(keepends=True), boundary)
    tokens, starts, chars_per_token = encode_corpus(documents, tokenizer)
    online = OnlineLearner(model, settings) if settings else None
    results = evaluate_stream(model, tokens, starts, args.block_size, progress=True,
                              characters_per_token=chars_per_token, online=online)
    results.update(file=str(args.file), documents=len(documents), characters=sum(len(d) for d in documents))
    if settings:
        results["online"] = {k: v for k, v in vars(settings).items() if k != "extra"}
    print(f"{Path(args.file).name}: perplexity {results['perplexity']:.3f}, {results['bits_per_token']:.4f} bits "
          f"per token, {results['bits_per_character']:.4f} bits per character over {results['tokens']:,} tokens")
    print(json.dumps(finite_json(results)))
    return results


def sudoku_data(args):
    """The puzzles to evaluate on, and a name for the output files."""
    if args.data_dir:
        return load_trm_folder(args.data_dir, "test", args.eval_subsample, EVAL_SUBSAMPLE_SEED).data, "trm_test"
    if args.dataset_name or (args.file and args.file.endswith(".csv")):
        local = args.dataset_name and Path(args.dataset_name).is_dir()
        name = str(Path(args.dataset_name) / "test.csv") if local else "test.csv" if args.dataset_name else args.file
        split = load_csv_splits({"test": name}, None if local or not args.dataset_name else args.dataset_name,
                                min_rating=args.min_rating, subsample_size=args.eval_subsample,
                                seed=EVAL_SUBSAMPLE_SEED)["test"]
        return split.data, Path(args.file).stem if args.file else Path(args.dataset_name).name
    if args.file:
        return solve_file(args.file), Path(args.file).stem
    givens = args.givens or DEFAULT_GIVENS[args.grid_size]
    data = generate_puzzles(args.num_puzzles, BOXES[args.grid_size], givens, seed=args.seed)
    return data, f"generated_{args.grid_size}x{args.grid_size}_{givens}givens"


def evaluate_sudoku(args, parser) -> dict:
    if args.grid_size is not None and args.grid_size not in BOXES:
        parser.error(f"--grid_size must be one of {sorted(BOXES)} for Sudoku, got {args.grid_size}")
    if args.num_trajectories < 1 or not 0 <= args.noise_scale < math.inf or any(d < 1 for d in args.max_steps or []):
        parser.error("--num_trajectories and --max_steps must be at least 1, --noise_scale a finite number >= 0")
    if args.min_rating is not None and not (args.dataset_name or (args.file or "").endswith(".csv")):
        parser.error("--min_rating filters rated CSV data (--file X.csv or --dataset_name): these puzzles have no "
                     "rating")
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    try:
        data, name = sudoku_data(args)
    except ValueError as error:
        parser.error(str(error))
    if data.size ** 2 != model.config.seq_len:
        parser.error(f"the model solves grids of {model.config.seq_len} cells, these have {data.size ** 2}")
    path = output_file(args, name, ".json", parser)
    out = path.parent
    results = evaluate_model(model, data, batch_size=args.batch_size, max_steps=args.max_steps,
                             num_trajectories=args.num_trajectories, noise_scale=args.noise_scale, seed=args.seed,
                             progress=True)
    path.write_text(json.dumps(finite_json(results), indent=2))
    sudoku_chart(results, name, out / f"eval_{name}.png")
    print(f"\n{name}, {results['puzzles']} puzzles: exact-puzzle accuracy by supervision steps")
    print("| steps | exact (all steps run) | exact at the Q head's halt | mean halting step | blank cells |")
    print("|---|---|---|---|---|")
    for depth, scores in (results.get("by_max_steps") or {str(results["max_steps"]): results}).items():
        print(f"| {depth} | {scores['exact_accuracy']:.4f} | {scores['exact_accuracy_at_q_halt']:.4f} | "
              f"{scores['mean_steps']:.2f} | {scores['cell_accuracy']:.4f} |")
    if "trajectories" in results:
        t = results["trajectories"]
        print(f"{t['num_trajectories']} trajectories (noise {t['noise_scale']}), {t['max_steps']} steps: exact "
              f"{t['q_head']['exact_accuracy']:.4f} picked by the Q head; {t['checker']['exact_accuracy']:.4f} picked "
              "by the checker (a valid grid keeping the givens: our addition, not TRM's)")
    print(f"wrote {out / f'eval_{name}.json'} and {out / f'eval_{name}.png'}")
    print(json.dumps(finite_json(results)))
    return results


if __name__ == "__main__":
    run_cli(main)
