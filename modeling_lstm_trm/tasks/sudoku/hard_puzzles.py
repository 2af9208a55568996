"""Hard 9x9 Sudoku without a download: a difficulty rating and a generator of rated minimal puzzles.

The rating is the number of backtracks (guesses that ran into a contradiction) a fixed propagate-and-backtrack
solver makes while exhausting the search tree: after each guess it fills naked and hidden singles, and it guesses
on the first cell with the fewest candidates. Puzzles that singles alone solve rate 0. Exhausting the tree (rather
than stopping at the first solution) makes the count independent of the order in which digits are tried.
Sudoku-Extreme's own `rating` column is also a backtrack count, of another solver, so the scales are alike but not
equal.

A generated puzzle is minimal: starting from a random solution grid, every cell is tried for removal once, in random
order, and removed if the puzzle stays unique. Removing a given can only add solutions, so a given that could not be
removed then cannot be removed from any smaller puzzle either: one pass leaves every given necessary.
"""

from __future__ import annotations

import contextlib
import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .puzzles import random_solution

SIZE = 9
CELLS = SIZE * SIZE
FULL = (1 << SIZE) - 1  # bit d-1 stands for digit d
UNITS = ([[r * SIZE + c for c in range(SIZE)] for r in range(SIZE)]
         + [[r * SIZE + c for r in range(SIZE)] for c in range(SIZE)]
         + [[(br + r) * SIZE + bc + c for r in range(3) for c in range(3)] for br in (0, 3, 6) for bc in (0, 3, 6)])
PEERS = [sorted({p for unit in UNITS if i in unit for p in unit} - {i}) for i in range(CELLS)]
BIT_DIGIT = {1 << d: d + 1 for d in range(SIZE)}


class _Search:
    """Exhaustive search with singles propagation; counts solutions (up to `limit`) and backtracks."""

    def __init__(self, limit: int):
        self.limit = limit
        self.solutions: list[list[int]] = []
        self.backtracks = 0

    @staticmethod
    def propagate(cand: list[int], queue: list[int]) -> bool:
        """Eliminate the digits of solved cells (`queue`) from their peers and place hidden singles, in place;
        False on a contradiction."""
        while True:
            while queue:
                i = queue.pop()
                bit = cand[i]
                for p in PEERS[i]:
                    m = cand[p]
                    if m & bit:
                        m ^= bit
                        if not m:
                            return False
                        cand[p] = m
                        if not m & (m - 1):
                            queue.append(p)
            for unit in UNITS:  # hidden singles: a digit with one place left in a unit goes there
                once = twice = 0
                for i in unit:
                    m = cand[i]
                    twice |= once & m
                    once |= m
                if once != FULL:
                    return False
                single = once & ~twice
                while single:
                    bit = single & -single
                    single ^= bit
                    for i in unit:
                        if cand[i] & bit:
                            if cand[i] != bit:
                                cand[i] = bit
                                queue.append(i)
                            break
            if not queue:
                return True

    def run(self, cand: list[int]) -> None:
        best, best_count = -1, SIZE + 1
        for i, m in enumerate(cand):
            if m & (m - 1):
                count = m.bit_count()
                if count < best_count:
                    best, best_count = i, count
                    if count == 2:
                        break
        if best < 0:
            self.solutions.append([BIT_DIGIT[m] for m in cand])
            return
        m = cand[best]
        while m:
            bit = m & -m
            m ^= bit
            child = cand.copy()
            child[best] = bit
            if self.propagate(child, [best]):
                self.run(child)
                if len(self.solutions) >= self.limit:
                    return
            else:
                self.backtracks += 1


def _search(puzzle, limit: int) -> _Search:
    grid = [int(v) for v in np.asarray(puzzle).reshape(-1)]
    if len(grid) != CELLS:
        raise ValueError(f"a 9x9 puzzle has 81 cells, got {len(grid)}")
    search = _Search(limit)
    cand = [FULL if v == 0 else 1 << (v - 1) for v in grid]
    if search.propagate(cand, [i for i, v in enumerate(grid) if v]):
        search.run(cand)
    return search


def rate(puzzle) -> int:
    """Backtracks of the fixed solver exhausting the search tree (0: singles solve it). -1 if the puzzle has no
    solution or more than one."""
    search = _search(puzzle, limit=2)
    return search.backtracks if len(search.solutions) == 1 else -1


def count_solutions(puzzle, limit: int = 2) -> int:
    return len(_search(puzzle, limit).solutions)


def minimal_puzzle(solution: list[int], rng: random.Random) -> list[int]:
    """Remove each given once, in random order, when the puzzle stays unique: the result is minimal."""
    puzzle = list(solution)
    order = list(range(CELLS))
    rng.shuffle(order)
    for i in order:
        value, puzzle[i] = puzzle[i], 0
        if count_solutions(puzzle, 2) != 1:
            puzzle[i] = value
    return puzzle


def _make(args: tuple[int, int, int, int]) -> tuple[list[tuple[list[int], list[int], int]], int]:
    """Worker: make minimal puzzles from seed `seed` until `count` rate at least `min_rating`, or `max_candidates`
    have been made; the puzzles kept and the highest rating seen."""
    seed, count, min_rating, max_candidates = args
    rng = random.Random(seed)
    out, highest = [], -1
    for _ in range(max_candidates):
        solution = [int(v) for v in random_solution((3, 3), rng).reshape(-1)]
        puzzle = minimal_puzzle(solution, rng)
        rating = rate(puzzle)
        highest = max(highest, rating)
        if rating >= min_rating:
            out.append((puzzle, solution, rating))
            if len(out) == count:
                break
    return out, highest


def generate_hard_puzzles(num_puzzles: int, min_rating: int = 0, seed: int = 0, num_workers: int = 1,
                          chunk: int = 8, progress: bool = False, max_candidates_per_puzzle: int = 2000):
    """`num_puzzles` minimal 9x9 puzzles rated at least `min_rating`, as (puzzles, solutions, ratings) arrays of
    shapes (n, 9, 9), (n, 9, 9), (n,). Reproducible for a given seed and chunk whatever `num_workers` is: work is cut
    into chunks of `chunk` puzzles, each with its own seed. The effort is bounded: a chunk gives up after
    `max_candidates_per_puzzle` candidates per puzzle it owes, and then a ValueError says what was reached."""
    if num_puzzles < 1:
        raise ValueError(f"num_puzzles must be at least 1, got {num_puzzles}")
    if min_rating < 0:
        raise ValueError(f"min_rating must be at least 0, got {min_rating}")
    jobs = [(seed * 1_000_003 + k, size, min_rating, size * max_candidates_per_puzzle)
            for k, start in enumerate(range(0, num_puzzles, chunk)) for size in [min(chunk, num_puzzles - start)]]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_puzzles, desc=f"puzzles rated >= {min_rating}", unit="puzzle")
    results, highest = [], -1
    with ProcessPoolExecutor(num_workers) if num_workers > 1 else contextlib.nullcontext() as pool:
        for part, part_highest in (pool.map(_make, jobs) if pool is not None else map(_make, jobs)):
            results.extend(part)
            highest = max(highest, part_highest)
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    if len(results) < num_puzzles:
        raise ValueError(f"gave up after {max_candidates_per_puzzle} candidates per puzzle: {len(results)} of "
                         f"{num_puzzles} puzzles rated >= {min_rating} (the highest rating seen: {highest}); ask for a "
                         "lower --min_rating")
    puzzles = np.array([p for p, _, _ in results], dtype=np.int64).reshape(-1, SIZE, SIZE)
    solutions = np.array([s for _, s, _ in results], dtype=np.int64).reshape(-1, SIZE, SIZE)
    return puzzles, solutions, np.array([r for _, _, r in results], dtype=np.int64)
