"""Specification of hard Sudoku: the rating, the minimal-puzzle generator, Sudoku-Extreme's CSV shape and TRM's
prebuilt folders through the real loaders, the recipe's data flags, the answer checker and evaluation by depth."""

import csv

import numpy as np
import pytest
import torch

from modeling_lstm_trm.tasks.sudoku.hard_puzzles import generate_hard_puzzles, rate
from modeling_lstm_trm.tasks.sudoku.puzzles import (
    SudokuSet,
    answer_checker,
    evaluate_model,
    generate_puzzles,
    is_valid_solution,
    parse_puzzles,
)
from modeling_lstm_trm.tasks.sudoku.sudoku_extreme import (
    load_csv_splits,
    load_trm_folder,
    write_csv,
    write_trm_folder,
)
from modeling_lstm_trm.tasks.sudoku.task import SudokuArguments, check_data_flags, load_splits

EASY = "003020600900305001001806400008102900700000008006708200002609500800203009005010300"
HARD = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"  # Norvig's hardest


def exact_cover_count(grid: np.ndarray, limit: int = 2) -> int:
    """Solutions of a 9x9 grid counted by Knuth's Algorithm X over the 324 Sudoku constraints: an independent check
    of the package's solvers."""
    def constraints(r, c, d):
        return [("cell", r, c), ("row", r, d), ("col", c, d), ("box", r // 3 * 3 + c // 3, d)]

    choices = {(r, c, d): constraints(r, c, d) for r in range(9) for c in range(9) for d in range(1, 10)}
    columns: dict = {}
    for choice, cols in choices.items():
        for col in cols:
            columns.setdefault(col, set()).add(choice)

    def select(choice):
        removed = []
        for col in choices[choice]:
            for other in columns[col]:
                for other_col in choices[other]:
                    if other_col != col:
                        columns[other_col].discard(other)
            removed.append(columns.pop(col))
        return removed

    def deselect(choice, removed):
        for col in reversed(choices[choice]):
            columns[col] = removed.pop()
            for other in columns[col]:
                for other_col in choices[other]:
                    if other_col != col:
                        columns[other_col].add(other)

    for r in range(9):
        for c in range(9):
            if grid[r, c]:
                if not all(col in columns for col in choices[(r, c, int(grid[r, c]))]):
                    return 0
                select((r, c, int(grid[r, c])))
    count = 0

    def search():
        nonlocal count
        if not columns:
            count += 1
            return
        col = min(columns, key=lambda k: len(columns[k]))
        for choice in list(columns[col]):
            removed = select(choice)
            search()
            deselect(choice, removed)
            if count >= limit:
                return

    search()
    return count


# ----- the rating and the generator ---------------------------------------------------------------------------------

def test_the_rating_counts_backtracks_and_refuses_improper_puzzles():
    easy, hard = parse_puzzles([EASY, HARD])
    assert rate(easy) == 0  # singles alone solve it
    assert rate(hard) > 0
    assert rate(np.zeros((9, 9), dtype=int)) == -1  # many solutions
    contradiction = easy.copy()
    contradiction[0, 0] = 3  # a second 3 in the first row
    assert rate(contradiction) == -1


def test_generated_puzzles_are_minimal_unique_and_rated_as_asked():
    puzzles, solutions, ratings = generate_hard_puzzles(4, min_rating=2, seed=3)
    assert puzzles.shape == solutions.shape == (4, 9, 9) and (ratings >= 2).all()
    for puzzle, solution, rating in zip(puzzles, solutions, ratings):
        assert exact_cover_count(puzzle) == 1
        assert is_valid_solution(solution, puzzle, (3, 3))
        assert rate(puzzle) == rating
        for r, c in zip(*np.nonzero(puzzle)):  # minimal: without any one given, the puzzle is no longer unique
            fewer = puzzle.copy()
            fewer[r, c] = 0
            assert exact_cover_count(fewer) == 2


def test_generation_is_reproducible_whatever_the_number_of_processes():
    one = generate_hard_puzzles(5, seed=11, chunk=2)
    two = generate_hard_puzzles(5, seed=11, chunk=2, num_workers=2)
    other = generate_hard_puzzles(5, seed=12, chunk=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    assert not np.array_equal(one[0], other[0])


# ----- Sudoku-Extreme's CSV shape and TRM's folders -----------------------------------------------------------------

@pytest.fixture(scope="module")
def rated():
    puzzles, solutions, ratings = generate_hard_puzzles(12, seed=5)
    return SudokuSet(puzzles, solutions, (3, 3), ratings=ratings)


def write(path, data: SudokuSet) -> str:
    write_csv(path, data.puzzles, data.solutions, data.ratings, source="test")
    return str(path)


def test_csv_files_load_through_datasets_with_rating_filter_and_seeded_subsample(tmp_path, rated):
    files = {"train": write(tmp_path / "train.csv", rated), "test": write(tmp_path / "test.csv", rated)}
    splits = load_csv_splits(files)
    assert np.array_equal(splits["train"].data.puzzles, rated.puzzles)
    assert np.array_equal(splits["test"].data.solutions, rated.solutions)
    assert np.array_equal(splits["train"].data.ratings, rated.ratings)
    threshold = int(np.median(rated.ratings))
    hard = load_csv_splits(files, min_rating=threshold)["train"]
    assert (hard.data.ratings >= threshold).all() and hard.below_min_rating == (rated.ratings < threshold).sum()
    first, again, other = (load_csv_splits(files, subsample_size=5, seed=seed)["train"].data for seed in (0, 0, 1))
    assert len(first) == 5 and np.array_equal(first.puzzles, again.puzzles)
    assert not np.array_equal(first.puzzles, other.puzzles)


def test_the_recipe_reads_a_local_folder_files_and_a_trm_folder_alike(tmp_path, rated):
    folder = tmp_path / "extreme"
    folder.mkdir()
    write(folder / "train.csv", rated)
    write(folder / "test.csv", SudokuSet(rated.puzzles[:4], rated.solutions[:4], (3, 3), ratings=rated.ratings[:4]))
    write_trm_folder(tmp_path / "trm", {"train": rated, "test": SudokuSet(rated.puzzles[:4], rated.solutions[:4],
                                                                          (3, 3))})
    sources = [SudokuArguments(dataset_name=str(folder)),
               SudokuArguments(train_file=str(folder / "train.csv"), test_file=str(folder / "test.csv")),
               SudokuArguments(data_dir=str(tmp_path / "trm"))]
    for args in sources:
        check_data_flags(args)
        assert args.size == 9
        train, test, info = load_splits(args, seed=0, is_main=False)
        assert np.array_equal(train.puzzles, rated.puzzles) and np.array_equal(test.solutions, rated.solutions[:4])
        assert info["train_rows"] == 12
    subset = load_splits(SudokuArguments(data_dir=str(tmp_path / "trm"), eval_subsample=3), 0, False).test
    assert len(subset) == 3


def test_the_hard_recipe_without_data_generates_rated_minimal_puzzles():
    args = SudokuArguments(recipe="hard", min_rating=1, train_puzzles=3, eval_puzzles=2)
    check_data_flags(args)
    train, held_out, info = load_splits(args, seed=0, is_main=False)
    assert len(train) == 3 and 1 <= len(held_out) <= 2 and (train.ratings >= 1).all()
    assert "rating >= 1" in info["source"]


@pytest.mark.parametrize("field, value, message", [
    ("question", "1" * 80, "the question must have 81 characters, got 80"),
    ("question", "x" + "." * 80, "the question holds 'x'"),
    ("answer", "0" * 81, "the answer holds '0'"),
    ("rating", "hard", "the rating must be an integer, got 'hard'"),
    ("answer", None, "the answer contradicts the question's givens"),
    ("answer", "123456789" * 9, "the answer is not a valid Sudoku grid"),
])
def test_a_bad_row_is_named_by_file_and_line_or_dropped_and_counted(tmp_path, rated, field, value, message):
    path = tmp_path / "bad.csv"
    write(path, rated)
    rows = list(csv.reader(path.open()))
    row = rows[3]  # line 4
    if value is None:  # a given that disagrees with the answer
        k = next(i for i, ch in enumerate(row[1]) if ch != ".")
        value = row[1][:k] + str(int(row[1][k]) % 9 + 1) + row[1][k + 1:]
        field = "question"
    row[["source", "question", "answer", "rating"].index(field)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ValueError, match=f"bad.csv, line 4: {message}"):
        load_csv_splits({"test": str(path)})
    kept = load_csv_splits({"test": str(path)}, drop_invalid=True)["test"]
    assert kept.dropped_invalid == 1 and len(kept.data) == len(rated) - 1


def test_a_trm_folder_with_values_outside_the_shift_is_refused(tmp_path, rated):
    write_trm_folder(tmp_path, {"test": rated})
    labels = np.load(tmp_path / "test" / "all__labels.npy")
    labels[2, 5] = 1  # a blank in a solution
    np.save(tmp_path / "test" / "all__labels.npy", labels)
    with pytest.raises(ValueError, match="all__labels.npy, row 2: values must be 2-10"):
        load_trm_folder(tmp_path, "test")


@pytest.mark.parametrize("flags, message", [
    (dict(train_file="a.csv"), "--train_file and --test_file go together"),
    (dict(dataset_name="x", data_dir="y"), "one data source"),
    (dict(dataset_name="x", grid_size=6), "is 9x9"),
    (dict(recipe="hard", grid_size=4), "--recipe hard is 9x9"),
    (dict(subsample_size=10), "select rows of a dataset"),
    (dict(data_dir="somewhere", min_rating=3), "has none"),
    (dict(train_file="missing.csv", test_file="missing.csv"), "--train_file: no such file"),
])
def test_data_flags_are_checked_before_any_work(flags, message):
    with pytest.raises(ValueError, match=message):
        check_data_flags(SudokuArguments(**flags))


# ----- the checker and evaluation by depth ----------------------------------------------------------------------------

def test_the_answer_checker_agrees_with_is_valid_solution(rated):
    rng = np.random.default_rng(0)
    answers = rated.solutions.reshape(len(rated), -1).copy()
    broken = rng.random(len(answers)) < 0.5
    answers[broken, 0] = answers[broken, 1]  # a repeated digit in the first row
    checked = answer_checker((3, 3))(torch.from_numpy(rated.puzzles.reshape(len(rated), -1)), torch.from_numpy(answers))
    expected = [is_valid_solution(a, p, (3, 3)) for a, p in zip(answers, rated.puzzles)]
    assert checked.tolist() == expected and any(expected) and not all(expected)


def test_evaluation_by_depth_reads_one_run_at_each_depth():
    from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving

    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(vocab_size=5, seq_len=16, hidden_size=16, num_heads=2, T_cycles=2,
                                       n_cycles=2, halt_max_steps=3, forward_dtype="float32"))
    torch.nn.init.normal_(model.q_head.weight, std=1.0)
    data = generate_puzzles(20, (2, 2), givens=6, seed=1)
    results = evaluate_model(model, data, batch_size=8, max_steps=[1, 5], num_trajectories=3)
    assert set(results["by_max_steps"]) == {"1", "3", "5"} and results["max_steps"] == 3
    x = torch.from_numpy(data.puzzles.reshape(20, -1))
    for depth in (1, 3, 5):
        solved = model.solve(x, max_steps=depth, run_to_max=True)
        blanks = x == 0
        right = (solved.final_predictions == torch.from_numpy(data.solutions.reshape(20, -1))) & blanks
        assert results["by_max_steps"][str(depth)]["cell_accuracy"] == pytest.approx(
            (right.sum() / blanks.sum()).item())
        assert results["by_max_steps"][str(depth)]["mean_steps"] == pytest.approx(solved.halted_at.float().mean())
    assert results["cell_accuracy"] == results["by_max_steps"]["3"]["cell_accuracy"]
    assert set(results["trajectories"]) >= {"q_head", "checker"}


def test_make_dataset_writes_what_the_loaders_read_and_never_overwrites(tmp_path):
    from conftest import load_example

    output = tmp_path / "hard.csv"
    summary = load_example("make_dataset").main(["--num_puzzles", "3", "--min_rating", "1", "--output", str(output),
                                                 "--num_workers", "1", "--seed", "4"])
    loaded = load_csv_splits({"test": str(output)})["test"].data
    assert len(loaded) == summary["puzzles"] == 3 and (loaded.ratings >= 1).all()
    assert all(rate(p) == r for p, r in zip(loaded.puzzles, loaded.ratings))
    with pytest.raises(SystemExit) as refused:
        load_example("make_dataset").main(["--num_puzzles", "3", "--output", str(output)])
    assert refused.value.code == 2
