"""Evaluate a trained model on its task (the task the model was trained on, unless --task says otherwise); the task
adds its own flags (`--model M --help` lists them).

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

Mazes: exact and valid-shortest-path accuracy on a Maze-Hard CSV file or dataset, a TRM folder or generated mazes
(`--grid_size`); `--fixed_point_steps k` also stops a maze whose answer held k steps; `--symmetries 8` reads each maze
in its 8 rotations and reflections and keeps the shortest of their answers that marks a path from S to G.

ARC: `--data_dir D --split S` scores a split whose tasks the model trained on, as the competition does (voted over
every version; pass@1, pass@2) and writes `eval_arc_<split>.json` and `submission_<split>.json` (the training run's
own `submission.json` stays as it is); a split without solutions (a hidden test) gets the submission alone.

Either way the last line printed is the JSON object.
"""

from __future__ import annotations

from modeling_lstm_trm.cli import run_cli, task_command


def main(argv: list[str] | None = None) -> dict:
    return task_command(__doc__, argv, "evaluate").evaluate()


if __name__ == "__main__":
    run_cli(main)
