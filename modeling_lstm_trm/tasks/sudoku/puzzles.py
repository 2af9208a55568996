"""Sudoku for LSTM-TRM: a bitmask solver, a unique-solution puzzle generator, a parser and augmentations.

A grid is a numpy array of shape (N, N) with 0 for a blank and digits 1..N, where N = box rows x box columns:
box (2, 2) gives 4x4 grids, (2, 3) gives 6x6, (3, 3) gives 9x9. Models see a grid flattened row by row, so the
token of a cell is its digit (0 = blank) and the vocabulary is N + 1 tokens.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..puzzle_dataset import AugmentedPuzzles

BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
DEFAULT_GIVENS = {4: 6, 6: 14, 9: 30}


def box_for_size(size: int) -> tuple[int, int]:
    if size not in BOXES:
        raise ValueError(f"grid size must be one of {sorted(BOXES)}, got {size}")
    return BOXES[size]


class _Board:
    """Candidate bitmasks per row, column and box; the solver's working state."""

    def __init__(self, grid: np.ndarray, box: tuple[int, int]):
        self.box = box
        self.size = n = box[0] * box[1]
        self.full = (1 << (n + 1)) - 2  # bits 1..n
        self.cells = [int(v) for v in np.asarray(grid).reshape(-1)]
        self.rows = [0] * n
        self.cols = [0] * n
        self.boxes = [0] * n
        self.box_of = [(i // n) // box[0] * box[0] + (i % n) // box[1] for i in range(n * n)]
        self.valid = True
        for i, v in enumerate(self.cells):
            if v:
                bit = 1 << v
                r, c, b = i // n, i % n, self.box_of[i]
                if (self.rows[r] | self.cols[c] | self.boxes[b]) & bit:
                    self.valid = False
                self.rows[r] |= bit
                self.cols[c] |= bit
                self.boxes[b] |= bit

    def candidates(self, i: int) -> int:
        n = self.size
        return self.full & ~(self.rows[i // n] | self.cols[i % n] | self.boxes[self.box_of[i]])

    def place(self, i: int, v: int) -> None:
        n, bit = self.size, 1 << v
        self.cells[i] = v
        self.rows[i // n] |= bit
        self.cols[i % n] |= bit
        self.boxes[self.box_of[i]] |= bit

    def remove(self, i: int, v: int) -> None:
        n, mask = self.size, ~(1 << v)
        self.cells[i] = 0
        self.rows[i // n] &= mask
        self.cols[i % n] &= mask
        self.boxes[self.box_of[i]] &= mask

    def search(self, limit: int, rng: random.Random | None, found: list) -> None:
        """Depth-first search on the blank with fewest candidates; appends solutions to `found` up to `limit`."""
        best, best_mask, best_count = -1, 0, 99
        for i, v in enumerate(self.cells):
            if v == 0:
                mask = self.candidates(i)
                count = mask.bit_count()
                if count < best_count:
                    best, best_mask, best_count = i, mask, count
                    if count <= 1:
                        break
        if best < 0:
            found.append(list(self.cells))
            return
        if best_count == 0:
            return
        digits = [d for d in range(1, self.size + 1) if best_mask >> d & 1]
        if rng is not None:
            rng.shuffle(digits)
        for d in digits:
            self.place(best, d)
            self.search(limit, rng, found)
            self.remove(best, d)
            if len(found) >= limit:
                return


def _board(grid, box) -> _Board:
    grid = np.asarray(grid)
    n = box[0] * box[1]
    if grid.shape not in ((n, n), (n * n,)):
        raise ValueError(f"a grid for box {box} must be {n}x{n}, got shape {grid.shape}")
    if grid.min() < 0 or grid.max() > n:
        raise ValueError(f"grid values must be 0 (blank) to {n}")
    return _Board(grid, box)


def find_solutions(grid, box=(3, 3), limit: int = 2) -> list[np.ndarray]:
    """Up to `limit` solutions, in the solver's order (2 answers "is it unique?")."""
    board = _board(grid, box)
    if not board.valid:
        return []
    found: list = []
    board.search(limit, None, found)
    n = box[0] * box[1]
    return [np.array(f, dtype=np.int64).reshape(n, n) for f in found]


def count_solutions(grid, box=(3, 3), limit: int = 2) -> int:
    """Number of solutions, counted up to `limit` (2 answers "is it unique?")."""
    return len(find_solutions(grid, box, limit))


def solve(grid, box=(3, 3)) -> np.ndarray | None:
    """The first solution found (the only one for a proper puzzle), or None if there is none."""
    found = find_solutions(grid, box, 1)
    return found[0] if found else None


def is_valid_solution(solution, puzzle, box) -> bool:
    """A complete grid that obeys every rule and agrees with the puzzle's givens."""
    solution, puzzle = np.asarray(solution).reshape(-1), np.asarray(puzzle).reshape(-1)
    n = box[0] * box[1]
    if solution.size != n * n or solution.min() < 1 or solution.max() > n:
        return False
    if np.any((puzzle != 0) & (puzzle != solution)):
        return False
    return _board(solution, box).valid


def random_solution(box, rng: random.Random) -> np.ndarray:
    n = box[0] * box[1]
    board = _Board(np.zeros((n, n), dtype=np.int64), box)
    found: list = []
    board.search(1, rng, found)
    return np.array(found[0], dtype=np.int64).reshape(n, n)


def make_puzzle(solution: np.ndarray, box, givens: int, rng: random.Random, attempts: int = 20) -> np.ndarray | None:
    """Blank cells of `solution` in random order while the puzzle keeps a unique solution, down to `givens`."""
    n = box[0] * box[1]
    for _ in range(attempts):
        puzzle = solution.reshape(-1).copy()
        order = list(range(n * n))
        rng.shuffle(order)
        remaining = n * n
        for i in order:
            if remaining == givens:
                break
            value = puzzle[i]
            puzzle[i] = 0
            if count_solutions(puzzle, box, limit=2) == 1:
                remaining -= 1
            else:
                puzzle[i] = value
        if remaining == givens:
            return puzzle.reshape(n, n)
    return None


@dataclass
class SudokuSet:
    """Puzzles and their solutions, each (count, N, N), with the box shape and, where known, difficulty ratings."""

    puzzles: np.ndarray
    solutions: np.ndarray
    box: tuple[int, int]
    ratings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.puzzles)

    @property
    def size(self) -> int:
        return self.box[0] * self.box[1]

    @property
    def questions(self) -> np.ndarray:  # the names every puzzle task's sets share (tasks.task.PuzzleSet)
        return self.puzzles

    @property
    def answers(self) -> np.ndarray:
        return self.solutions


def generate_puzzles(n: int, box=(3, 3), givens: int | None = None, seed: int = 0) -> SudokuSet:
    """`n` random puzzles with exactly one solution each and exactly `givens` filled cells.

    Every puzzle comes from its own random solution grid (randomized backtracking), so the set is not one grid up to
    symmetry. `givens` is the difficulty knob: fewer givens, harder puzzles. Defaults: 6 (4x4), 14 (6x6), 30 (9x9).
    """
    box = tuple(box)
    size = box[0] * box[1]
    if size not in BOXES or BOXES[size] != box:
        raise ValueError(f"box must be one of {sorted(BOXES.values())}, got {box}")
    givens = DEFAULT_GIVENS[size] if givens is None else givens
    if not 0 < givens <= size * size:
        raise ValueError(f"givens must be in [1, {size * size}], got {givens}")
    rng = random.Random(seed)
    puzzles, solutions = [], []
    failures = 0
    while len(puzzles) < n:
        solution = random_solution(box, rng)
        puzzle = make_puzzle(solution, box, givens, rng)
        if puzzle is None:
            failures += 1
            if failures > 50 + 10 * n:
                raise ValueError(f"could not make unique {size}x{size} puzzles with only {givens} givens; "
                                 "use more givens")
            continue
        puzzles.append(puzzle)
        solutions.append(solution)
    return SudokuSet(np.stack(puzzles), np.stack(solutions), box)


def parse_puzzles(source, size: int | None = None) -> np.ndarray:
    """Puzzles from a file path or an iterable of lines: one puzzle per line, `0` or `.` for a blank, text after
    `//` ignored, blank lines skipped. Returns (count, N, N). Raises ValueError naming the line of a malformed entry
    (wrong length, a character that is no digit, givens that contradict each other)."""
    if isinstance(source, (str, Path)) and Path(source).exists():
        lines = Path(source).read_text().splitlines()
        where = str(source)
    elif isinstance(source, (str, Path)):
        raise ValueError(f"no such puzzle file: {source}")
    else:
        lines, where = list(source), "input"
    puzzles = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("//", 1)[0].strip().replace(" ", "")
        if not text:
            continue
        n = size if size is not None else round(len(text) ** 0.5)
        if n not in BOXES or len(text) != n * n:
            expected = f"{size * size}" if size is not None else "16, 36 or 81"
            raise ValueError(f"{where}, line {number}: expected {expected} cells, got {len(text)}: {raw.strip()!r}")
        bad = sorted({ch for ch in text if ch != "." and not (ch.isdigit() and int(ch) <= n)})
        if bad:
            raise ValueError(f"{where}, line {number}: bad character(s) {''.join(bad)!r} for a {n}x{n} grid "
                             f"(use 1-{n}, and 0 or . for a blank)")
        grid = np.array([0 if ch == "." else int(ch) for ch in text], dtype=np.int64).reshape(n, n)
        if not _Board(grid, BOXES[n]).valid:
            raise ValueError(f"{where}, line {number}: the givens contradict each other (a digit repeats in a row, "
                             "column or box)")
        puzzles.append(grid)
    if not puzzles:
        raise ValueError(f"{where}: no puzzles found")
    if len({p.shape for p in puzzles}) > 1:
        raise ValueError(f"{where}: puzzles of different sizes in one file")
    return np.stack(puzzles)


# ----- augmentation ------------------------------------------------------------------------------------------------

def random_symmetry(box, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """A random validity-preserving symmetry: a digit permutation, a row order (rows within bands, then bands), a
    column order (columns within stacks, then stacks) and, for square boxes, whether to transpose."""
    br, bc = box
    n = br * bc
    digits = np.concatenate([[0], rng.permutation(n) + 1])  # blank stays blank
    bands = rng.permutation(bc)  # there are n / br = bc bands of br rows
    rows = np.concatenate([band * br + rng.permutation(br) for band in bands])
    stacks = rng.permutation(br)  # n / bc = br stacks of bc columns
    cols = np.concatenate([stack * bc + rng.permutation(bc) for stack in stacks])
    transpose = br == bc and bool(rng.integers(2))
    return digits, rows, cols, transpose


def apply_symmetry(grids: np.ndarray, symmetry) -> np.ndarray:
    """Apply one symmetry to grids of shape (..., N, N); puzzle and solution must get the same one."""
    digits, rows, cols, transpose = symmetry
    out = digits[grids][..., rows, :][..., :, cols]
    return np.swapaxes(out, -1, -2) if transpose else out


def _line_orders(groups: int, per_group: int) -> np.ndarray:
    """Every order of lines that permutes groups and lines within groups: (groups! * per_group!^groups, N)."""
    from itertools import permutations, product

    inner = list(permutations(range(per_group)))
    orders = [np.concatenate([g * per_group + np.array(inner_perm[k]) for k, g in enumerate(outer)])
              for outer in permutations(range(groups)) for inner_perm in product(inner, repeat=groups)]
    return np.array(orders)


def _relabel_by_first_appearance(flat: np.ndarray) -> np.ndarray:
    """Rename digits (rows of `flat`) in order of first appearance, so grids equal up to relabeling coincide."""
    n_cells = flat.shape[1]
    digits = np.arange(1, flat.max(initial=0) + 1)
    present = flat[:, :, None] == digits
    first = np.where(present.any(1), present.argmax(1), n_cells)
    rank = np.argsort(np.argsort(first, axis=1, kind="stable"), axis=1, kind="stable") + 1
    table = np.concatenate([np.zeros((len(flat), 1), dtype=np.int64), rank], axis=1)
    return np.take_along_axis(table, flat, axis=1)


def symmetry_invariant(grid: np.ndarray, box) -> tuple:
    """A cheap fingerprint that every symmetry of `random_symmetry` preserves (equal for equivalent grids): digit
    frequencies, given-counts of the rows within each band, of the columns within each stack, and of the boxes."""
    br, bc = box
    grid = np.asarray(grid)
    n = grid.shape[0]
    filled = grid != 0
    counts = tuple(sorted(np.bincount(grid[filled], minlength=n + 1)[1:]))
    bands = tuple(sorted(tuple(sorted(filled[b * br:(b + 1) * br].sum(1))) for b in range(bc)))
    stacks = tuple(sorted(tuple(sorted(filled[:, k * bc:(k + 1) * bc].sum(0))) for k in range(br)))
    boxes = tuple(sorted(filled.reshape(bc, br, br, bc).sum((1, 3)).ravel()))
    lines = (bands, stacks) if br != bc else tuple(sorted((bands, stacks)))
    return counts, lines, boxes


def canonical_form(grid: np.ndarray, box) -> bytes:
    """The least image of `grid` under every row/column symmetry (and transposition for square boxes), digits
    relabeled by first appearance: equal exactly for grids that augmentation can turn into each other. Exhaustive,
    so meant for 4x4 and 6x6 (9x9 has 3.4 million row/column orders)."""
    br, bc = box
    grid = np.asarray(grid)
    rows, cols = _line_orders(bc, br), _line_orders(br, bc)
    images = [grid] + ([grid.T] if br == bc else [])
    candidates = np.concatenate([g[rows][:, :, cols].transpose(0, 2, 1, 3).reshape(-1, grid.size) for g in images])
    relabeled = _relabel_by_first_appearance(candidates)
    best = relabeled[np.lexsort(relabeled.T[::-1])[0]]
    return best.astype(np.uint8).tobytes()


def drop_equivalent(candidates: SudokuSet, seen: SudokuSet) -> SudokuSet:
    """The puzzles of `candidates` that no symmetry maps onto a puzzle of `seen` or onto an earlier candidate.
    Canonical forms are computed only where the cheap invariant collides; for 9x9 (too many symmetries to
    enumerate) an invariant collision counts as equivalent."""
    box = candidates.box
    exhaustive = box != (3, 3)
    groups: dict[tuple, list] = {}
    for puzzle in seen.puzzles:
        groups.setdefault(symmetry_invariant(puzzle, box), []).append(puzzle)
    canonical: dict[tuple, set] = {}
    keep = []
    for i, puzzle in enumerate(candidates.puzzles):
        invariant = symmetry_invariant(puzzle, box)
        group = groups.setdefault(invariant, [])
        if group and not exhaustive:
            continue
        if group:
            if invariant not in canonical:
                canonical[invariant] = {canonical_form(p, box) for p in group}
            key = canonical_form(puzzle, box)
            if key in canonical[invariant]:
                continue
            canonical[invariant].add(key)
        group.append(puzzle)
        keep.append(i)
    ratings = None if candidates.ratings is None else candidates.ratings[keep]
    return SudokuSet(candidates.puzzles[keep], candidates.solutions[keep], box, ratings=ratings)


def train_test_split(n_train: int, n_test: int, box=(3, 3), givens: int | None = None, seed: int = 0,
                     test_fraction_of_classes: float = 0.2) -> tuple[SudokuSet, SudokuSet]:
    """Training and held-out puzzles that augmentation cannot turn into each other.

    4x4 puzzles fall into a few hundred classes under the symmetries, so there the classes themselves are split
    (a held-out puzzle's class never occurs in training); for 6x6 and 9x9 the held-out set is generated apart and
    any puzzle equivalent to a training one is dropped.
    """
    box = tuple(box)
    if box == (2, 2):
        pool = generate_puzzles(n_train + 4 * n_test, box, givens, seed=seed)
        keys = [canonical_form(p, box) for p in pool.puzzles]
        salt = int(np.random.default_rng(seed).integers(1 << 30))
        test_mask = np.array([(int.from_bytes(k, "little") + salt) % 9973 < 9973 * test_fraction_of_classes
                              for k in keys])
        test_idx, train_idx = np.flatnonzero(test_mask)[:n_test], np.flatnonzero(~test_mask)[:n_train]
        return (SudokuSet(pool.puzzles[train_idx], pool.solutions[train_idx], box),
                SudokuSet(pool.puzzles[test_idx], pool.solutions[test_idx], box))
    train = generate_puzzles(n_train, box, givens, seed=seed)
    test = generate_puzzles(n_test, box, givens, seed=seed + 1_000_003)
    return train, drop_equivalent(test, train)


def augment_pair(puzzle: np.ndarray, solution: np.ndarray, box, rng: np.random.Generator):
    """The puzzle and its solution under one random symmetry."""
    symmetry = random_symmetry(box, rng)
    return apply_symmetry(puzzle, symmetry), apply_symmetry(solution, symmetry)


# ----- training data and evaluation --------------------------------------------------------------------------------

class SudokuDataset(AugmentedPuzzles):
    """Puzzles and solutions augmented on the fly by a random symmetry of the grid (see `AugmentedPuzzles`); `base` is
    the `SudokuSet` it draws from."""

    def __init__(self, base: SudokuSet, length: int, seed: int = 0, augment: bool = True):
        symmetry = (lambda puzzle, solution, rng: augment_pair(puzzle, solution, base.box, rng)) if augment else None
        super().__init__(base.puzzles, base.solutions, length, seed, symmetry)
        self.base = base


def solve_file(path, size: int | None = None) -> SudokuSet:
    """Puzzles from a file with their solutions computed by the solver (ValueError if one has none)."""
    puzzles = parse_puzzles(path, size)
    n = puzzles.shape[-1]
    box = BOXES[n]
    answers, several = [], []
    for k, puzzle in enumerate(puzzles):
        found = find_solutions(puzzle, box, 2)
        if not found:
            raise ValueError(f"{path}: puzzle {k + 1} has no solution")
        if len(found) > 1:
            several.append(k + 1)
        answers.append(found[0])
    if several:
        print(f"notice: {path}: {len(several)} of {len(puzzles)} puzzles have more than one solution (first: puzzle "
              f"{several[0]}); each is scored against the solver's first, so another valid answer counts as wrong",
              file=sys.stderr, flush=True)
    return SudokuSet(puzzles, np.stack(answers), box)


def sudoku_metric():
    """The package's own `evaluate` metric (a local module: nothing is downloaded)."""
    import evaluate

    return evaluate.load(str(Path(__file__).parent / "sudoku_accuracy"))


def answer_checker(box):
    """A function of (puzzles, answers), (rows, N*N) token tensors, that says per row whether the answer is a valid
    grid that keeps the puzzle's givens: the checker `solve(..., answer_checker=...)` may pick trajectories by."""
    import torch

    br, bc = box
    n = br * bc

    def check(puzzles: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        grids = answers.view(-1, n, n)
        digits = torch.arange(1, n + 1, device=answers.device)
        one_hot = grids.unsqueeze(-1) == digits
        rows_ok = one_hot.any(2).all(-1).all(-1)
        cols_ok = one_hot.any(1).all(-1).all(-1)
        boxes_ok = one_hot.view(-1, bc, br, br, bc, n).any(4).any(2).all(-1).all(-1).all(-1)
        keeps = ((puzzles == 0) | (puzzles == answers)).all(-1)
        return rows_ok & cols_ok & boxes_ok & keeps

    return check


def _scores(predictions, data: SudokuSet) -> dict:
    """Exact-puzzle and blank-cell accuracy of (count, N*N) predictions, through the package's `evaluate` metric."""
    scores = sudoku_metric().compute(predictions=predictions.tolist(),
                                     references=data.solutions.reshape(len(data), -1).tolist(),
                                     puzzles=data.puzzles.reshape(len(data), -1).tolist())
    return {"exact_accuracy": scores["exact_accuracy"], "cell_accuracy": scores["cell_accuracy"]}


def evaluate_model(model, data: SudokuSet, batch_size: int = 256, max_steps: list[int] | None = None,
                   num_trajectories: int = 1, noise_scale: float = 0.5, seed: int = 0, progress: bool = False) -> dict:
    """Solve every puzzle of `data` with `model` and score it, by TRM's convention: every puzzle runs
    `halt_max_steps` supervision steps (`exact_accuracy`, `cell_accuracy`), and beside it the answer at the step where
    the Q head halts (`..._at_q_halt`, `mean_steps`: that step).

    `max_steps`: more depths, each scored the same way under `by_max_steps` (one run to the deepest, read at each).
    `num_trajectories` K > 1: K trajectories per puzzle, all to `halt_max_steps` (`noise_scale`, `seed`: see
    `LSTMTRMForPuzzleSolving.solve`), scored under `trajectories` once per selection rule, never mixed: `q_head` (TRM's
    confidence) and `checker` (our own addition: a trajectory whose answer is a valid grid keeping the givens)."""
    import torch

    device = next(model.parameters()).device
    halt_max = model.config.halt_max_steps
    depths = sorted({halt_max, *(max_steps or [])})
    if depths[0] < 1:
        raise ValueError(f"max_steps must be at least 1, got {depths[0]}")
    checker = answer_checker(data.box)
    generator = torch.Generator(device=device).manual_seed(seed)
    at_depth = {d: [] for d in depths}
    at_q_halt = {d: [] for d in depths}
    halted_at = {d: [] for d in depths}
    picked = {"q_head": [], "checker": []}
    starts = range(0, len(data), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="solving", unit="batch")
    for start in starts:
        x = torch.from_numpy(data.puzzles[start:start + batch_size].reshape(-1, data.size ** 2)).to(device)
        out = model.solve(x, max_steps=depths[-1], run_to_max=True, return_trace=True)
        halts = out.q_halt_trace > 0  # (steps, batch)
        for d in depths:
            at_depth[d].append(out.trace[d - 1].cpu())
            first = torch.where(halts[:d].any(0), halts[:d].int().argmax(0), d - 1)
            at_q_halt[d].append(out.trace[first, torch.arange(len(x), device=device)].cpu())
            halted_at[d].append(first.cpu() + 1)
        if num_trajectories > 1:
            several = model.solve(x, max_steps=halt_max, run_to_max=True, num_trajectories=num_trajectories,
                                  noise_scale=noise_scale, answer_checker=checker, generator=generator)
            picked["q_head"].append(several.final_predictions.cpu())
            picked["checker"].append(several.checked_final_predictions.cpu())
    by_depth = {}
    for d in depths:
        by_depth[str(d)] = {**_scores(torch.cat(at_depth[d]), data),
                            **{f"{key}_at_q_halt": value for key, value in _scores(torch.cat(at_q_halt[d]),
                                                                                   data).items()},
                            "mean_steps": float(torch.cat(halted_at[d]).float().mean())}
    results = {**by_depth[str(halt_max)], "max_steps": halt_max, "puzzles": len(data)}
    if max_steps:
        results["by_max_steps"] = by_depth
    if num_trajectories > 1:
        results["trajectories"] = {"num_trajectories": num_trajectories, "noise_scale": noise_scale,
                                   "max_steps": halt_max,
                                   **{rule: _scores(torch.cat(answers), data) for rule, answers in picked.items()}}
    return results
