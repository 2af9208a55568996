"""Solve puzzles with a trained LSTM-TRM and watch the answer form, supervision step by supervision step. The task is
the one the model was trained on (`--model M --help` lists its flags).

    python examples/solve.py --model outputs/lstm-trm-sudoku-6x6 "1.3...5..2...."     # one puzzle
    python examples/solve.py --model D --file puzzles.txt                            # a file, one per line
    python examples/solve.py --model D PUZZLE --trace --png trace.png                # the reasoning trace
    python examples/solve.py --model D --file hard.csv --num_trajectories 8 --checker --png trace.png
    python examples/solve.py --model outputs/lstm-trm-maze-cpu --file mazes.csv --png maze.png   # a maze model
    python examples/solve.py --model outputs/lstm-trm-maze-loops --file mh30.csv --max_steps 64 --fixed_point_steps 2 \
        --symmetries 8 --png maze.png                                                # the pick over 8 images
    python examples/solve.py --model outputs/lstm-trm-arc-smoke --data_dir ../shared/data/arc \
        --split training 0520fde7 --png arc.png                                      # ARC tasks the model trained on

Sudoku: a puzzle is N*N characters, row by row, with 0 or . for a blank; --file reads a file of such lines or a CSV
file of Sudoku-Extreme's shape (its questions). For each puzzle it prints the solved grid, whether it is a valid
solution that keeps the givens, and the supervision step at which the model halted. With --num_trajectories K, each
puzzle is solved K times from noisy starts and the Q head picks one (the trace shows that trajectory); --checker
also prints the pick among trajectories whose answer is a valid grid keeping the givens (our addition, not TRM's).

Mazes: N*N characters of `# SGo` or a Maze-Hard CSV file; the path found and whether it is a shortest path. As the
benchmarks read large mazes: --fixed_point_steps 2 --max_steps 64 stops each maze at its fixed point, and
--symmetries 8 also reads its 7 rotations and reflections and answers the shortest path among their answers.

ARC: the arguments are task ids of --split in --data_dir; every test input is solved under each version of its task
the model was trained on, and the versions vote: the two attempts are printed beside the truth (where the split has
solutions), and --png draws input, attempts and truth as ARC colours.
"""

from __future__ import annotations

from modeling_lstm_trm.cli import run_cli, task_command


def main(argv: list[str] | None = None) -> list[dict]:
    return task_command(__doc__, argv, "solve").solve()


if __name__ == "__main__":
    run_cli(main)
