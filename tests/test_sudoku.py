"""Specification of the Sudoku module: solver, generator, parser, augmentation, held-out split, tokenizer, metric."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling_lstm_trm.tasks.sudoku.puzzles import (
    BOXES,
    SudokuDataset,
    apply_symmetry,
    canonical_form,
    count_solutions,
    generate_puzzles,
    is_valid_solution,
    parse_puzzles,
    random_symmetry,
    solve,
    solve_file,
    sudoku_metric,
    symmetry_invariant,
    train_test_split,
)
from modeling_lstm_trm.tokenization import build_grid_tokenizer

EASY = "003020600900305001001806400008102900700000008006708200002609500800203009005010300"


@pytest.mark.parametrize("box, givens, count", [((2, 2), 6, 300), ((2, 3), 14, 200), ((3, 3), 30, 40)])
def test_generated_puzzles_have_exactly_one_solution(box, givens, count):
    data = generate_puzzles(count, box, givens=givens, seed=7)
    n = box[0] * box[1]
    assert data.puzzles.shape == data.solutions.shape == (count, n, n)
    for puzzle, solution in zip(data.puzzles, data.solutions):
        assert (puzzle != 0).sum() == givens
        assert count_solutions(puzzle, box, limit=2) == 1
        assert is_valid_solution(solution, puzzle, box)
        assert np.array_equal(solve(puzzle, box), solution)


def test_generation_is_seeded_and_varied():
    a, b = generate_puzzles(20, (2, 3), seed=1), generate_puzzles(20, (2, 3), seed=1)
    assert np.array_equal(a.puzzles, b.puzzles)
    assert len({canonical_form(s, (2, 3)) for s in a.solutions}) > 1  # not one grid up to symmetry
    assert not np.array_equal(a.puzzles, generate_puzzles(20, (2, 3), seed=2).puzzles)


def test_fewer_givens_is_the_difficulty_knob():
    hard, easy = generate_puzzles(5, (3, 3), givens=26, seed=0), generate_puzzles(5, (3, 3), givens=40, seed=0)
    assert ((hard.puzzles != 0).sum((1, 2)) == 26).all() and ((easy.puzzles != 0).sum((1, 2)) == 40).all()
    with pytest.raises(ValueError, match="givens"):
        generate_puzzles(1, (2, 2), givens=0)


def test_solver_counts_and_solves():
    assert count_solutions(np.zeros((4, 4), dtype=int), (2, 2), limit=1000) == 288  # all 4x4 Sudoku grids
    grid = np.array([int(c) for c in EASY]).reshape(9, 9)
    solution = solve(grid, (3, 3))
    assert is_valid_solution(solution, grid, (3, 3))
    contradiction = grid.copy()
    contradiction[0, 0] = 3  # a second 3 in the first row
    assert count_solutions(contradiction, (3, 3)) == 0 and solve(contradiction, (3, 3)) is None
    assert not is_valid_solution(solution, contradiction, (3, 3))


def test_parser_reads_the_common_formats(tmp_path):
    lines = [
        "// a comment line",
        "",
        EASY.replace("0", ".") + "   // trailing comment",
        EASY,
    ]
    path = tmp_path / "p.txt"
    path.write_text("\n".join(lines))
    grids = parse_puzzles(path)
    assert grids.shape == (2, 9, 9) and np.array_equal(grids[0], grids[1])
    assert parse_puzzles(["1.3." + "." * 12]).shape == (1, 4, 4)


@pytest.mark.parametrize("bad_line, message", [
    (EASY[:80], "line 2: expected 16, 36 or 81 cells, got 80"),
    (EASY[:80] + "x", "line 2: bad character"),
    ("33" + EASY[2:], "line 2: the givens contradict"),
])
def test_parser_names_the_line_of_malformed_input(bad_line, message):
    with pytest.raises(ValueError, match=message):
        parse_puzzles([EASY, bad_line])


def test_shared_puzzle_files_parse_and_solve():
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sudoku" / "easy_50.txt"
    if not path.exists():
        pytest.skip("../shared/data is not beside this checkout")
    data = solve_file(path)
    assert len(data) == 50
    assert all(is_valid_solution(s, p, (3, 3)) for p, s in zip(data.puzzles, data.solutions))


# --- augmentation -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples():
    return {box: generate_puzzles(8, box, seed=3) for box in BOXES.values()}


@settings(max_examples=60, deadline=None)
@given(size=st.sampled_from([4, 6, 9]), seed=st.integers(0, 2**32 - 1), index=st.integers(0, 7))
def test_augmentation_keeps_validity_and_the_solution(samples, size, seed, index):
    box = BOXES[size]
    puzzle, solution = samples[box].puzzles[index], samples[box].solutions[index]
    symmetry = random_symmetry(box, np.random.default_rng(seed))
    new_puzzle, new_solution = apply_symmetry(puzzle, symmetry), apply_symmetry(solution, symmetry)
    assert is_valid_solution(new_solution, new_puzzle, box)
    assert (new_puzzle != 0).sum() == (puzzle != 0).sum()
    assert count_solutions(new_puzzle, box) == 1
    assert np.array_equal(solve(new_puzzle, box), new_solution)
    assert symmetry_invariant(new_puzzle, box) == symmetry_invariant(puzzle, box)
    if size != 9:
        assert canonical_form(new_puzzle, box) == canonical_form(puzzle, box)


def test_every_symmetry_kind_is_used():
    rng = np.random.default_rng(0)
    draws = [random_symmetry((3, 3), rng) for _ in range(50)]
    assert any(d[3] for d in draws) and not all(d[3] for d in draws)  # transposition, sometimes
    assert not any(random_symmetry((2, 3), rng)[3] for _ in range(20))  # never for a 2x3 box
    digits, rows, cols, _ = draws[0]
    assert digits[0] == 0 and sorted(digits[1:]) == list(range(1, 10))
    assert all(sorted(rows[b * 3:(b + 1) * 3] // 3) == [rows[b * 3] // 3] * 3 for b in range(3))  # bands stay whole


def test_held_out_4x4_puzzles_share_no_class_with_training():
    train, test = train_test_split(300, 100, (2, 2), givens=6, seed=0)
    assert len(test) == 100
    classes = {canonical_form(p, (2, 2)) for p in train.puzzles}
    assert not classes & {canonical_form(p, (2, 2)) for p in test.puzzles}


def test_held_out_6x6_drops_puzzles_equivalent_to_training():
    from modeling_lstm_trm.tasks.sudoku.puzzles import SudokuSet, drop_equivalent
    train = generate_puzzles(30, (2, 3), seed=0)
    rng = np.random.default_rng(1)
    disguised = np.stack([apply_symmetry(p, random_symmetry((2, 3), rng)) for p in train.puzzles[:5]])
    fresh = generate_puzzles(5, (2, 3), seed=99)
    candidates = SudokuSet(np.concatenate([disguised, fresh.puzzles]),
                           np.concatenate([train.solutions[:5], fresh.solutions]), (2, 3))
    kept = drop_equivalent(candidates, train)
    assert np.array_equal(kept.puzzles, fresh.puzzles)


def test_dataset_items_are_reproducible_augmented_examples():
    base = generate_puzzles(10, (2, 3), seed=0)
    dataset = SudokuDataset(base, length=100, seed=5)
    a, b = dataset[17], dataset[17]
    assert torch.equal(a["input_ids"], b["input_ids"]) and a["input_ids"].shape == (36,)
    puzzle, solution = a["input_ids"].numpy().reshape(6, 6), a["labels"].numpy().reshape(6, 6)
    assert is_valid_solution(solution, puzzle, (2, 3))
    assert len({dataset[i]["input_ids"].numpy().tobytes() for i in range(30)}) > 20
    with pytest.raises(IndexError):
        dataset[100]


# --- tokenizer and metric -----------------------------------------------------------------------------------------

def test_grid_tokenizer_maps_cells_to_their_values(tmp_path):
    from transformers import AutoTokenizer
    tokenizer = build_grid_tokenizer(9)
    assert tokenizer(EASY.replace("0", "."))["input_ids"] == [int(c) for c in EASY]
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded("1 2 . 4 // note")["input_ids"] == [1, 2, 0, 4]
    with pytest.raises(ValueError):
        build_grid_tokenizer(5)


def test_metric_scores_exact_and_blank_cell_accuracy():
    metric = sudoku_metric()
    scores = metric.compute(predictions=[[1, 2, 3, 4], [1, 2, 4, 4]], references=[[1, 2, 3, 4], [1, 2, 3, 4]],
                            puzzles=[[1, 0, 0, 0], [1, 2, 0, 0]])
    assert scores["exact_accuracy"] == 0.5
    assert scores["cell_accuracy"] == pytest.approx(4 / 5)  # blank cells: 3 right of 3, then 1 right of 2
    assert scores["puzzles"] == 2
