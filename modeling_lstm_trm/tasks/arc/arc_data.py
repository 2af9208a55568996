"""ARC-AGI as the ARC Prize / Kaggle files have it, and as TRM encodes it.

Files: `arc-agi_<split>_challenges.json` maps a task id to `{"train": [{"input", "output"}, ...], "test": [{"input"},
...]}`; `arc-agi_<split>_solutions.json` maps it to the list of test outputs. The public repositories' folder format
holds one `<task id>.json` per task with the test outputs inside. A grid is a list of rows of colours 0-9, at most
30x30. Every grid is checked when read; a bad one is an error naming the file and the task.

Encoding (TRM's): a 30x30 canvas per grid, 0 the padding, 1 the end-of-grid marker (the row just below the grid and
the column just right of it), colours 2-11. Augmentation: one of the 8 dihedral transforms after a permutation of
colours 1-9 (0, the background, kept); every augmented version of a task is its own puzzle identifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...checks import check_name
from ..task import dihedral, undo_dihedral

MAX_SIDE = 30
CHARSET = ".|0123456789"  # TRM's tokens, the one place they are written: padding, end-of-grid marker, colours 0-9
PAD, END, COLOUR_OFFSET = (CHARSET.index(ch) for ch in ".|0")


@dataclass
class ArcTask:
    """A task's demonstration pairs and its test pairs (a test output is None where no solution is known)."""

    task_id: str
    train: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray | None]] = field(default_factory=list)


def to_grid(value, where: str) -> np.ndarray:
    """A JSON grid as a uint8 array; ValueError naming `where` for a ragged, empty or oversized grid or a colour
    outside 0-9."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) and row for row in value):
        raise ValueError(f"{where}: a grid must be a non-empty list of non-empty rows")
    if len({len(row) for row in value}) != 1:
        raise ValueError(f"{where}: the grid's rows have different lengths")
    if len(value) > MAX_SIDE or len(value[0]) > MAX_SIDE:
        raise ValueError(f"{where}: the grid is {len(value)}x{len(value[0])}, larger than {MAX_SIDE}x{MAX_SIDE}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 for row in value for v in row):
        raise ValueError(f"{where}: colours must be integers 0-9")
    return np.array(value, dtype=np.uint8)


def parse_task(task_id: str, task: dict, solutions: list | None, where: str, need_solutions: bool = True) -> ArcTask:
    """One task from its JSON (`solutions`: its test outputs, or None to read them from the test pairs)."""
    place = f"{where}, task {task_id}"
    if not isinstance(task, dict) or not task.get("train") or not task.get("test"):
        raise ValueError(f"{place}: a task needs 'train' pairs and 'test' inputs")
    train = [(to_grid(pair.get("input"), f"{place}, train pair {k}"),
              to_grid(pair.get("output"), f"{place}, train pair {k} output")) for k, pair in enumerate(task["train"])]
    if solutions is None:
        solutions = [pair.get("output") for pair in task["test"]]
    if len(solutions) != len(task["test"]) or (need_solutions and any(s is None for s in solutions)):
        if need_solutions:
            raise ValueError(f"{place}: {len(task['test'])} test inputs, but solutions for "
                             f"{sum(s is not None for s in solutions)}")
        solutions = [None] * len(task["test"])
    test = [(to_grid(pair.get("input"), f"{place}, test input {k}"),
             None if solution is None else to_grid(solution, f"{place}, test output {k}"))
            for k, (pair, solution) in enumerate(zip(task["test"], solutions))]
    return ArcTask(task_id, train, test)


def load_split(data_dir, split: str, need_solutions: bool = True) -> dict[str, ArcTask]:
    """The tasks of `arc-agi_<split>_challenges.json` with their solutions from `arc-agi_<split>_solutions.json`.
    Without the solutions file (a competition's hidden test), `need_solutions=False` reads the inputs alone."""
    check_name(split, "the ARC split")
    challenges = Path(data_dir) / f"arc-agi_{split}_challenges.json"
    if not challenges.is_file():
        raise ValueError(f"--data_dir {data_dir}: no {challenges.name} (split {split!r})")
    tasks = json.loads(challenges.read_text())
    if not isinstance(tasks, dict):
        raise ValueError(f"{challenges}: must map task ids to tasks (a JSON object), found a {type(tasks).__name__}")
    solutions_file = Path(data_dir) / f"arc-agi_{split}_solutions.json"
    solutions = json.loads(solutions_file.read_text()) if solutions_file.is_file() else None
    if solutions is not None and not isinstance(solutions, dict):
        raise ValueError(f"{solutions_file}: must map task ids to test outputs (a JSON object), found a "
                         f"{type(solutions).__name__}")
    if solutions is None and need_solutions:
        raise ValueError(f"--data_dir {data_dir}: no {solutions_file.name}, so split {split!r} cannot be scored")
    out = {}
    for task_id, task in tasks.items():
        if solutions is not None and task_id not in solutions and need_solutions:
            raise ValueError(f"{solutions_file}, task {task_id}: missing solution")
        task_solutions = solutions.get(task_id) if solutions is not None else [None] * len(task.get("test", []))
        out[task_id] = parse_task(task_id, task, task_solutions, str(challenges), need_solutions)
    return out


def load_task_folder(folder) -> dict[str, ArcTask]:
    """The public repositories' format: one `<task id>.json` per task, test outputs inside."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise ValueError(f"{folder}: no <task id>.json files")
    return {f.stem: parse_task(f.stem, json.loads(f.read_text()), None, str(f)) for f in files}


# ----- TRM's encoding ------------------------------------------------------------------------------------------------

def encode(grid: np.ndarray, top: int = 0, left: int = 0, side: int = MAX_SIDE) -> np.ndarray:
    """A grid on the `side` x `side` canvas (TRM's: 30) at (top, left): colours shifted to 2-11, the end-of-grid marker
    on the row below and the column right of it (where the canvas has room), padding elsewhere."""
    rows, cols = grid.shape
    if top < 0 or left < 0 or top + rows > side or left + cols > side:
        raise ValueError(f"a {rows}x{cols} grid at ({top}, {left}) does not fit a {side}x{side} canvas")
    canvas = np.full((side, side), PAD, dtype=np.uint8)
    canvas[top:top + rows, left:left + cols] = grid + COLOUR_OFFSET
    if top + rows < side:
        canvas[top + rows, left:left + cols] = END
    if left + cols < side:
        canvas[top:top + rows, left + cols] = END
    return canvas


def decode(canvas: np.ndarray) -> np.ndarray | None:
    """The grid a prediction at the top-left corner holds, cropped at the end-of-grid marker: as many rows as column 0
    has leading colours, as many columns as row 0 has; None where that rectangle is empty or holds a non-colour.
    `canvas`: a square canvas, flattened or not."""
    canvas = np.asarray(canvas)
    side = int(round(canvas.size ** 0.5))
    canvas = canvas.reshape(side, side)
    is_colour = canvas >= COLOUR_OFFSET
    rows = int(np.argmin(is_colour[:, 0])) if not is_colour[:, 0].all() else side
    cols = int(np.argmin(is_colour[0, :])) if not is_colour[0, :].all() else side
    if rows == 0 or cols == 0 or not is_colour[:rows, :cols].all():
        return None
    return (canvas[:rows, :cols] - COLOUR_OFFSET).astype(np.uint8)


def max_side(task: ArcTask) -> int:
    """The longest side of any grid of the task (test outputs included): the canvas it needs is one more."""
    return max(max(grid.shape) for pair in task.train + task.test for grid in pair if grid is not None)


# ----- augmentation with identity -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Augmentation:
    """A dihedral transform (0-7: k % 4 quarter turns, then a transpose if k >= 4) after a colour permutation
    (`colours[c]` is the new colour of c; colour 0 maps to 0)."""

    dihedral: int = 0
    colours: tuple[int, ...] = tuple(range(10))

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dihedral(np.asarray(self.colours, dtype=np.uint8)[grid], self.dihedral))

    def invert(self, grid: np.ndarray) -> np.ndarray:
        out = undo_dihedral(grid, self.dihedral)
        return np.ascontiguousarray(np.argsort(self.colours).astype(np.uint8)[out])

    @property
    def name(self) -> str:
        return f"t{self.dihedral}c{''.join(map(str, self.colours))}"

    @classmethod
    def from_name(cls, name: str) -> Augmentation:
        """The augmentation `name` describes ("t5c0213456789": transform 5 after that colour permutation)."""
        dihedral, _, colours = name[1:].partition("c")
        if not (name.startswith("t") and dihedral.isdigit() and int(dihedral) < 8 and len(colours) == 10
                and sorted(colours) == list("0123456789") and colours[0] == "0"):
            raise ValueError(f"not an augmentation name: {name!r}")
        return cls(int(dihedral), tuple(int(c) for c in colours))


IDENTITY = Augmentation()


def random_augmentation(rng: np.random.Generator) -> Augmentation:
    return Augmentation(int(rng.integers(8)), (0, *(int(c) for c in rng.permutation(np.arange(1, 10)))))


def version_key(pairs: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple:
    """Order-free identity of a task's grids: two augmentations that give the same pairs are one version."""
    def grid_key(grid):
        return b"-" if grid is None else bytes(grid.shape) + grid.tobytes()
    return tuple(sorted((grid_key(a), grid_key(b)) for a, b in pairs))


def augmentations_of(task: ArcTask, count: int, rng: np.random.Generator, tries_per_version: int = 5) \
        -> list[Augmentation]:
    """The identity, then up to `count` random augmentations whose versions of the task (its demonstration pairs and
    test inputs; the test outputs play no part) differ from each other and from the original: a symmetric task gets
    fewer."""
    pairs = task.train + [(question, None) for question, _ in task.test]
    # a colour permutation commutes with the dihedral transforms: turn each grid 8 ways once, then only recolour
    turned = [[(Augmentation(d).apply(a), None if b is None else Augmentation(d).apply(b)) for a, b in pairs]
              for d in range(8)]
    seen = {version_key(pairs)}
    chosen = [IDENTITY]
    for _ in range(tries_per_version * count):
        if len(chosen) > count:
            break
        aug = random_augmentation(rng)
        lut = np.asarray(aug.colours, dtype=np.uint8)
        key = version_key([(lut[a], None if b is None else lut[b]) for a, b in turned[aug.dihedral]])
        if key not in seen:
            seen.add(key)
            chosen.append(aug)
    return chosen
