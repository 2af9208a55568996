"""Mazes as TRM has them: an N x N character grid, `#` wall, space open, `S` start, `G` goal; the answer is the same
grid with the cells of the shortest path from S to G (S and G excluded) marked `o`. Tokens follow TRM's charset
`# SGo` shifted by one (0 is padding): `#` 1, space 2, `S` 3, `G` 4, `o` 5.

Here: parsing with checks that name the row, breadth-first search, the "valid shortest path" test, the 8 dihedral
symmetries, a canonical form under them, generators of several kinds of maze (`MAZE_KINDS`: carved corridors,
Maze-Hard's random walls, perfect mazes of other textures, the looped kinds recurrent nets fail on) with a long
shortest path, and an auxiliary target beyond the path (`distance_target`).
"""

from __future__ import annotations

import random
from collections import deque

import numpy as np

from ..puzzle_dataset import AugmentedPuzzles
from ..task import dihedral

CHARSET = "# SGo"  # TRM's; the one place the maze vocabulary is written
VOCABULARY = ("[PAD]", *CHARSET)  # token k; the model's vocab_size is its length
WALL, OPEN, START, GOAL, PATH = (VOCABULARY.index(ch) for ch in CHARSET)
TO_TOKEN = {ch: VOCABULARY.index(ch) for ch in CHARSET}
TO_CHAR = np.array(["?", *CHARSET])


def to_tokens(text: str, size: int, where: str, what: str) -> np.ndarray:
    """An N*N-character string as an (N, N) token array; ValueError naming `where` for a wrong length or character."""
    if not isinstance(text, str) or len(text) != size * size:
        got = "nothing" if not text else f"{len(text)} characters"
        raise ValueError(f"{where}: the {what} must have {size * size} characters ({size}x{size}), got {got}")
    bad = sorted(set(text) - set(CHARSET))
    if bad:
        raise ValueError(f"{where}: the {what} holds {''.join(bad)!r} (allowed: {', '.join(map(repr, CHARSET))})")
    return np.array([TO_TOKEN[ch] for ch in text], dtype=np.int64).reshape(size, size)


def to_text(grid: np.ndarray) -> str:
    return "".join(TO_CHAR[np.asarray(grid).reshape(-1)])


def endpoints(grid: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """(S, G) as (row, column); ValueError if either is missing or repeated."""
    found = []
    for token, name in ((START, "S"), (GOAL, "G")):
        cells = np.argwhere(grid == token)
        if len(cells) != 1:
            raise ValueError(f"a maze needs exactly one {name}, this one has {len(cells)}")
        found.append(tuple(int(v) for v in cells[0]))
    return found[0], found[1]


LOOKING = ((1, 0), (-1, 0), (0, 1), (0, -1))  # down, up, right, left: the order a cell's neighbours are looked at in


def _neighbours(cell, size):
    r, c = cell
    for dr, dc in LOOKING:
        if 0 <= r + dr < size and 0 <= c + dc < size:
            yield r + dr, c + dc


def distances(grid: np.ndarray, source: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first search through non-wall cells: steps from `source` (-1 where unreachable) and the number of
    shortest paths to each cell, capped at 2 (enough to tell "unique"). On flat Python lists: the generators call it
    hundreds of times per Maze-Hard-shaped maze they keep, and numpy's per-cell indexing was most of their time."""
    rows, cols = grid.shape
    blocked = (np.asarray(grid) == WALL).reshape(-1).tolist()
    dist, ways = [-1] * (rows * cols), [0] * (rows * cols)
    first = source[0] * cols + source[1]
    dist[first], ways[first] = 0, 1
    queue = deque([first])
    while queue:
        cell = queue.popleft()
        r, c = divmod(cell, cols)
        step = dist[cell] + 1
        for nxt, inside in ((cell + cols, r + 1 < rows), (cell - cols, r > 0), (cell + 1, c + 1 < cols),
                            (cell - 1, c > 0)):  # LOOKING's order
            if not inside or blocked[nxt]:
                continue
            if dist[nxt] < 0:
                dist[nxt] = step
                queue.append(nxt)
            if dist[nxt] == step:
                ways[nxt] = min(2, ways[nxt] + ways[cell])
    return (np.array(dist, dtype=np.int64).reshape(rows, cols),
            np.array(ways, dtype=np.int64).reshape(rows, cols))


def solve_maze(question: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The answer grid (the shortest path marked; where there are several, the one found walking back from G to the
    first neighbour one step nearer S, looking down, up, right, left) and the number of shortest paths (0, 1, or 2
    for "more than one")."""
    start, goal = endpoints(question)
    dist, ways = distances(question, start)
    if dist[goal] < 0:
        return None, 0
    answer = question.copy()
    cell = goal
    while dist[cell] > 1:  # walk back along decreasing distance
        cell = next(n for n in _neighbours(cell, question.shape[0]) if dist[n] == dist[cell] - 1)
        answer[cell] = PATH
    return answer, int(ways[goal])


DISTANCE_CLASSES = 4  # the auxiliary target's classes: a wall or a cell S cannot reach, then steps from S mod 3


def distance_target(question: np.ndarray, with_arrival: bool = False) -> np.ndarray:
    """Per cell, 0 for a wall or a cell S cannot reach, else 1 + (steps from S) mod 3: the finite state a breadth-first
    wave from S leaves behind. It is enough to find the path: from G, step to a neighbour one class lower (mod 3).
    `with_arrival`: each class plus DISTANCE_CLASSES times the steps from S, when a wave from S reaches the cell (as
    a model with `auxiliary_front_speed` reads its labels)."""
    dist, _ = distances(question, endpoints(question)[0])
    target = np.where(dist >= 0, 1 + dist % 3, 0)
    return target + DISTANCE_CLASSES * np.maximum(dist, 0) if with_arrival else target


PARENT_CLASSES = 6  # --parent_target's classes: a wall or a cell S cannot reach, S, then the parent's direction


def parent_target(question: np.ndarray) -> np.ndarray:
    """Per cell, 0 for a wall or a cell S cannot reach, 1 for S, else 2 + the direction (down, up, right, left) of its
    parent: the first neighbour one step nearer S, looking in that order. The pointer a breadth-first wave from S
    leaves where it reaches a cell; following them back from G marks the label's path (`solve_maze`). Unlike the
    distance's classes, one wrong pointer shifts nothing behind it. Directions belong to the frame: compute it on the
    turned maze."""
    dist, _ = distances(question, endpoints(question)[0])
    target = np.where(dist == 0, 1, 0)  # S; every other cell S reaches gets its direction below
    padded = np.pad(dist, 1, constant_values=-1)
    size = question.shape[0]
    for direction, (dr, dc) in enumerate(LOOKING):
        neighbour = padded[1 + dr:1 + dr + size, 1 + dc:1 + dc + size]
        target = np.where((target == 0) & (dist > 0) & (neighbour == dist - 1), 2 + direction, target)
    return target


def path_problem(question: np.ndarray, answer: np.ndarray) -> str | None:
    """None if `answer` marks a shortest path from S to G through open cells and agrees with `question` elsewhere,
    else what is wrong (ValueError if the question itself lacks S or G)."""
    if answer.shape != question.shape:
        return f"the answer is {answer.shape}, the question {question.shape}"
    start, goal = endpoints(question)
    marked = answer == PATH
    if np.any(~marked & (answer != question)):
        return "the answer changes cells other than by marking the path with 'o'"
    if np.any(marked & (question != OPEN)):
        return "the answer marks a wall, S or G as path"
    dist, _ = distances(question, start)
    if dist[goal] < 0:
        return "G cannot be reached from S"
    cells = set(map(tuple, np.argwhere(marked))) | {start, goal}
    if len(cells) != dist[goal] + 1:
        return f"the answer marks {len(cells) - 2} cells, a shortest path from S to G {dist[goal] - 1}"
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in _neighbours(queue.popleft(), question.shape[0]):
            if nxt in cells and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    if seen != cells:
        return "the marked cells do not form one path from S to G"
    return None


# ----- symmetries ------------------------------------------------------------------------------------------------

def canonical_form(grid: np.ndarray) -> bytes:
    """The least of the 8 images' bytes: equal exactly for mazes one symmetry turns into the other."""
    return min(np.ascontiguousarray(dihedral(grid, k)).astype(np.uint8).tobytes() for k in range(8))


def canvas_for(config, size: int) -> int:
    """The side on which a model of this config reads mazes of side `size`: their own for the conv mixer (any side),
    the model's canvas otherwise (smaller mazes padded with walls); ValueError where they are larger than that."""
    canvas = round(config.seq_len ** 0.5)
    if config.mixer == "conv" or size == canvas:
        return size
    if size > canvas or canvas * canvas != config.seq_len:
        raise ValueError(f"the model reads {canvas}x{canvas} grids ({config.seq_len} cells), these mazes are "
                         f"{size}x{size}")
    return canvas


def pad_to_canvas(grids: np.ndarray, canvas: int) -> np.ndarray:
    """(count, N, N) mazes on a (count, canvas, canvas) grid of walls, top-left aligned: still valid mazes with the
    same answers, so a model of one sequence length reads mazes of every size up to `canvas`."""
    size = grids.shape[-1]
    if size > canvas:
        raise ValueError(f"{size}x{size} mazes do not fit a {canvas}x{canvas} canvas")
    out = np.full((*grids.shape[:-2], canvas, canvas), WALL, dtype=grids.dtype)
    out[..., :size, :size] = grids
    return out


# ----- generation --------------------------------------------------------------------------------------------------
# Perfect mazes (one path between any two cells) live on the odd lattice: cells at odd (row, column), the walls between
# two neighbouring cells at one even coordinate. Each maker returns a grid of WALL / OPEN.

def _lattice(size: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(1, size - 1, 2) for c in range(1, size - 1, 2)]


def _lattice_neighbours(cell, size):
    r, c = cell
    return [(r + dr, c + dc) for dr, dc in ((2, 0), (-2, 0), (0, 2), (0, -2))
            if 0 < r + dr < size - 1 and 0 < c + dc < size - 1]


def _join(grid: np.ndarray, a, b) -> None:
    grid[a], grid[b], grid[(a[0] + b[0]) // 2, (a[1] + b[1]) // 2] = OPEN, OPEN, OPEN


def _knock_down(grid: np.ndarray, rng: random.Random, loops: float) -> np.ndarray:
    """Open a share `loops` of the inner walls that separate two open cells: each one makes a loop."""
    size = grid.shape[0]

    def between_open(r, c):
        vertical = grid[r - 1, c] == OPEN and grid[r + 1, c] == OPEN
        return vertical or (grid[r, c - 1] == OPEN and grid[r, c + 1] == OPEN)

    walls = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1)
             if grid[r, c] == WALL and between_open(r, c)]
    for cell in rng.sample(walls, int(len(walls) * loops)):
        grid[cell] = OPEN
    return grid


def _carve(size: int, rng: random.Random, loops: float) -> np.ndarray:
    """Randomized depth-first carving (long winding corridors, few branches), then `loops` of the walls knocked down."""
    grid = np.full((size, size), WALL, dtype=np.int64)
    start = rng.choice(_lattice(size))
    grid[start] = OPEN
    stack = [start]
    while stack:
        options = [n for n in _lattice_neighbours(stack[-1], size) if grid[n] == WALL]
        if not options:
            stack.pop()
            continue
        nxt = rng.choice(options)
        _join(grid, stack[-1], nxt)
        stack.append(nxt)
    return _knock_down(grid, rng, loops)


def _wilson(size: int, rng: random.Random, loops: float = 0.0) -> np.ndarray:
    """A uniform spanning tree of the lattice (Wilson's loop-erased random walks): every perfect maze equally likely,
    a texture unlike depth-first carving's."""
    grid = np.full((size, size), WALL, dtype=np.int64)
    cells = _lattice(size)
    tree = {rng.choice(cells)}
    grid[next(iter(tree))] = OPEN
    for first in rng.sample(cells, len(cells)):
        exit_to, cell = {}, first
        while cell not in tree:  # walk until the tree; a revisit overwrites the exit: the loops are erased
            exit_to[cell] = rng.choice(_lattice_neighbours(cell, size))
            cell = exit_to[cell]
        cell = first
        while cell not in tree:
            _join(grid, cell, exit_to[cell])
            tree.add(cell)
            cell = exit_to[cell]
    return _knock_down(grid, rng, loops)


def _kruskal(size: int, rng: random.Random, loops: float = 0.0) -> np.ndarray:
    """Kruskal's algorithm on randomly ordered lattice edges: a perfect maze with many short dead ends."""
    grid = np.full((size, size), WALL, dtype=np.int64)
    cells = _lattice(size)
    parent = {cell: cell for cell in cells}

    def root(cell):
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    edges = [(a, b) for a in cells for b in _lattice_neighbours(a, size) if a < b]
    rng.shuffle(edges)
    for a, b in edges:
        if root(a) != root(b):
            parent[root(a)] = root(b)
            _join(grid, a, b)
    return _knock_down(grid, rng, loops)


def _division(size: int, rng: random.Random, loops: float = 0.0) -> np.ndarray:
    """Recursive division: an open chamber split by a wall with one gap, again and again: a perfect maze of long
    straight walls."""
    last = size - 2 if size % 2 else size - 3  # the last odd row / column inside the border
    grid = np.full((size, size), WALL, dtype=np.int64)
    grid[1:last + 1, 1:last + 1] = OPEN
    chambers = [(1, last, 1, last)]  # odd bounds, inclusive
    while chambers:
        r0, r1, c0, c1 = chambers.pop()
        if r1 - r0 < 2 and c1 - c0 < 2:
            continue
        if r1 - r0 > c1 - c0 or (r1 - r0 == c1 - c0 and rng.random() < 0.5):  # split across the longer side
            wall, gap = rng.randrange(r0 + 1, r1, 2), rng.randrange(c0, c1 + 1, 2)
            grid[wall, c0:c1 + 1] = WALL
            grid[wall, gap] = OPEN
            chambers += [(r0, wall - 1, c0, c1), (wall + 1, r1, c0, c1)]
        else:
            wall, gap = rng.randrange(c0 + 1, c1, 2), rng.randrange(r0, r1 + 1, 2)
            grid[r0:r1 + 1, wall] = WALL
            grid[gap, wall] = OPEN
            chambers += [(r0, r1, c0, wall - 1), (r0, r1, wall + 1, c1)]
    return _knock_down(grid, rng, loops)


def _scatter(size: int, rng: random.Random, loops: float = 0.0) -> np.ndarray:
    """Maze-Hard's kind of maze (the generator of Lehnert et al. 2024, "Beyond A*", which HRM's Maze-Hard used at
    30x30): walls on a uniformly random 30-50% of the cells, no corridors, open fields and many loops."""
    cells = size * size
    walls = rng.sample(range(cells), rng.randint(cells // 10 * 3, cells // 10 * 5))
    grid = np.full(cells, OPEN, dtype=np.int64)
    grid[walls] = WALL
    return grid.reshape(size, size)


def _open_room(size: int, rng: random.Random, loops: float) -> np.ndarray:
    """Carved with `loops`, then a room of about a third of the side cleared of walls (where G goes)."""
    grid = _carve(size, rng, loops)
    side = max(3, size // 3)
    r, c = rng.randrange(1, size - side), rng.randrange(1, size - side)
    grid[r:r + side, c:c + side] = OPEN
    grid[r + side // 2, c + side // 2] = GOAL  # a marker for `_place_endpoints`, replaced there
    return grid


# style -> (walls, how S and G are placed, what the style is); `loops` applies to the carved kinds
MAZE_KINDS = {
    "carved": (_carve, "far_unique", "depth-first corridors, a share of walls knocked down (--maze_loops)"),
    "scattered": (_scatter, "longest", "Maze-Hard's: 30-50% of the cells walls at random, open fields, many loops"),
    "wilson": (_wilson, "far_unique", "a uniform spanning tree (Wilson's algorithm): perfect, another texture"),
    "kruskal": (_kruskal, "far_unique", "Kruskal's algorithm: perfect, many short dead ends"),
    "division": (_division, "far_unique", "recursive division: perfect, long straight walls"),
    "many-loops": (_carve, "longest", "carved, then half of the walls between two open cells knocked down"),
    "start-inside": (_carve, "start_inside", "carved with loops, S on a cell that is not a dead end"),
    "open-field": (_open_room, "open_field", "carved with loops and a cleared room around G"),
}
MIXED = ("carved", "scattered", "many-loops", "start-inside", "open-field")  # "mixed": one of these per maze
MAZE_STYLES = (*MAZE_KINDS, "mixed")
LOOPS = 0.05  # carved mazes: the share of inner walls knocked down after carving (0: a perfect maze, no loops)
KIND_LOOPS = {"many-loops": 0.5, "start-inside": 0.1, "open-field": 0.1, "wilson": 0.0, "kruskal": 0.0,
              "division": 0.0}  # fixed by the kind; "carved" takes --maze_loops
MIN_SIDE, MAX_SIDE = 5, 99  # sides generated or read (Maze-Hard is 30x30; a model's canvas grows as the square)


def check_side(side: int, flag: str) -> None:
    if not MIN_SIDE <= side <= MAX_SIDE:
        raise ValueError(f"{flag} must be a maze side in {MIN_SIDE}..{MAX_SIDE}, got {side}")


def longest_possible_path(side: int, style: str = "carved") -> int:
    """A bound no shortest path of a generated maze of this side can exceed: the open cells less one (lattice kinds:
    the odd lattice's m^2 cells and m^2 - 1 corridors, m = (side - 1) // 2; scattered: at least 30% of cells are
    walls; mixed: its shortest kind's)."""
    if style == "scattered":
        return side * side - (side * side // 10 * 3) - 1
    m = (side - 1) // 2
    return 2 * m * m - 2


def check_path_length(side: int, length: int, style: str = "carved", flag: str = "--min_path_length") -> None:
    """Refused at once where arithmetic says no maze can have it (else the generator would try for minutes)."""
    if length > longest_possible_path(side, style):
        raise ValueError(f"{flag} {length}: no {side}x{side} {style} maze has a shortest path that long (at most "
                         f"{longest_possible_path(side, style)} steps); ask for a shorter path or a larger maze")


def _farthest(dist: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(int(dist.argmax()), dist.shape))


def _place_endpoints(grid: np.ndarray, rule: str, min_path_length: int, rng: random.Random):
    """(S, G) by the kind's rule, or None where this grid has no such pair. far_unique: S at the end of a long corridor
    (the farthest cell from a random one), G a random cell far enough with a unique shortest path; longest: the two
    ends of the longest shortest path two sweeps find; start_inside: S a random cell with 3+ open neighbours, G the
    farthest from it; open_field: G in the cleared room, S the farthest cell from it."""
    room = tuple(int(v) for v in np.argwhere(grid == GOAL)[0]) if rule == "open_field" else None
    if room:
        grid[room] = OPEN
    open_cells = [tuple(cell) for cell in np.argwhere(grid == OPEN).tolist()]
    if len(open_cells) < 2:
        return None
    if rule == "start_inside":
        inside = [cell for cell in open_cells
                  if sum(grid[n] == OPEN for n in _neighbours(cell, grid.shape[0])) >= 3]
        start = rng.choice(inside) if inside else None
    else:
        start = _farthest(distances(grid, room or rng.choice(open_cells))[0])
    if start is None:
        return None
    dist, ways = distances(grid, start)
    if rule == "far_unique":
        far = [cell for cell in open_cells if dist[cell] >= min_path_length and ways[cell] == 1]
        return (start, rng.choice(far)) if far else None
    goal = room if rule == "open_field" else _farthest(dist)
    return (start, goal) if dist[goal] >= min_path_length and goal != start else None


def generate_maze(size: int, min_path_length: int, rng: random.Random, loops: float = LOOPS,
                  attempts: int | None = None, style: str = "carved") -> tuple[np.ndarray, np.ndarray]:
    """(question, answer): a `size` x `size` maze of `style` (`MAZE_KINDS`, or "mixed": a random kind of `MIXED` per
    maze) whose shortest path from S to G is at least `min_path_length` steps. Perfect and carved kinds have a unique
    shortest path; the looped kinds may have several: the answer marks one, as Maze-Hard's A* does (`solve_maze`)."""
    question, answer, _ = draw_maze(size, min_path_length, rng, loops, attempts, style)
    return question, answer


def draw_maze(size: int, min_path_length: int, rng: random.Random, loops: float = LOOPS,
              attempts: int | None = None, style: str = "carved") -> tuple[np.ndarray, np.ndarray, str]:
    """`generate_maze` with the kind it kept: "mixed" draws a kind per attempt, so a long path floor, which some kinds
    seldom reach, shifts the mix towards the others."""
    check_side(size, "a maze's side")
    if style not in MAZE_STYLES:
        raise ValueError(f"maze style must be one of {', '.join(MAZE_STYLES)}, got {style!r}")
    check_path_length(size, min_path_length, style, "a shortest path of")
    for _ in range(attempts or (200 if style != "scattered" else 5000)):
        kind = rng.choice(MIXED) if style == "mixed" else style
        make, rule, _ = MAZE_KINDS[kind]
        grid = make(size, rng, KIND_LOOPS.get(kind, rng.choice((0.0, LOOPS, 0.2)) if style == "mixed" else loops))
        ends = _place_endpoints(grid, rule, min_path_length, rng)
        if ends is None:
            continue
        question = grid.copy()
        question[ends[0]], question[ends[1]] = START, GOAL
        answer, count = solve_maze(question)
        if count == 1 or (rule != "far_unique" and count):
            return question, answer, kind
    raise ValueError(f"could not make a {size}x{size} {style} maze with a shortest path of at least "
                     f"{min_path_length} steps; ask for a shorter path or a larger maze")


def generate_mazes(count: int, size: int, min_path_length: int, seed: int = 0, loops: float = LOOPS,
                   exclude: set[bytes] | None = None, style: str = "carved") -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct mazes of `style` (no two related by a symmetry, none whose canonical form is in `exclude`),
    as (questions, answers) arrays of shape (count, size, size)."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    questions, answers = [], []
    repeats = 0
    while len(questions) < count:
        question, answer = generate_maze(size, min_path_length, rng, loops, style=style)
        key = canonical_form(question)
        if key in seen:
            repeats += 1
            if repeats > 100 + 10 * count:
                raise ValueError(f"only {len(questions)} distinct {size}x{size} mazes with a shortest path of at least "
                                 f"{min_path_length} steps turned up; ask for fewer, larger or shorter-path mazes")
            continue
        seen.add(key)
        questions.append(question)
        answers.append(answer)
    return np.stack(questions), np.stack(answers)


# ----- training data and evaluation --------------------------------------------------------------------------------

TIE_BREAKS = ("frame", "given")  # --tie_break: which shortest path a label marks where there are several


class MazeDataset(AugmentedPuzzles):
    """Mazes and answers under a random one of the 8 symmetries, on the fly (see `AugmentedPuzzles`).

    Where a maze has several shortest paths, `tie_break` says which one its label marks. "frame" (the default): the
    one `solve_maze` picks in the frame the model sees, so that one local rule explains every label (from G, step to
    the first neighbour one step nearer S, looking down, up, right, left). "given": the given answer turned with the
    maze, as TRM's data builder does; then the 8 images of one maze mark different paths (for about 40% of mixed
    looped mazes' images), a choice the model cannot read off its input."""

    def __init__(self, questions: np.ndarray, answers: np.ndarray, length: int, seed: int = 0, augment: bool = True,
                 tie_break: str = "frame", target_in_frame=None):
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
        self.several = ({q.tobytes() for q in questions if solve_maze(q)[1] > 1} if tie_break == "frame" and augment
                        else set())
        self.frame_labels = {}  # (maze, symmetry) -> its answer marked in that frame, computed once
        self.target_in_frame = target_in_frame  # an auxiliary target that reads directions: recomputed per frame
        super().__init__(questions, answers, length, seed, self.turned if augment else None)

    def turned(self, question: np.ndarray, answer: np.ndarray, rng: np.random.Generator):
        k = int(rng.integers(8))
        key = question.tobytes()
        question, answer = dihedral(question, k), dihedral(answer, k)
        if key not in self.several and self.target_in_frame is None:
            return question, answer  # every label turns with the maze
        if (key, k) not in self.frame_labels:
            self.frame_labels[key, k] = self.marked_in_frame(question, answer, key in self.several)
        return question, self.frame_labels[key, k]

    def marked_in_frame(self, question: np.ndarray, answer: np.ndarray, several: bool) -> np.ndarray:
        """The turned answer with what reads directions marked again in the new frame: the path where shortest paths
        tie (`solve_maze` breaks ties in a fixed order), and the second target if it is `target_in_frame`'s."""
        path = solve_maze(question)[0] if several else answer[0] if answer.ndim == 3 else answer
        if self.target_in_frame is not None:
            return np.stack([path, self.target_in_frame(question)])
        return np.concatenate([path[None], answer[1:]]) if answer.ndim == 3 else path


def with_distance_target(questions: np.ndarray, answers: np.ndarray, with_arrival: bool = False) -> np.ndarray:
    """(count, 2, N, N): each answer with its `distance_target` behind it, as a model with `auxiliary_classes` reads
    its labels (the symmetries act on both alike)."""
    return np.stack([answers, np.stack([distance_target(q, with_arrival) for q in questions])], axis=1)


def with_parent_target(questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """(count, 2, N, N): each answer with its `parent_target` behind it (in the given frame; `MazeDataset` recomputes
    it in each turned one)."""
    return np.stack([answers, np.stack([parent_target(q) for q in questions])], axis=1)


def score_mazes(questions: np.ndarray, answers: np.ndarray, predictions: np.ndarray) -> dict:
    """Per maze, averaged: `valid_shortest_path_accuracy`, the primary figure (the prediction marks a shortest path
    from S to G through open cells and keeps the rest of the maze: right wherever several shortest paths exist),
    `exact_accuracy` (the predicted grid equals the answer), and `exact_accuracy_unique`, exact match over the
    `unique_path_mazes` whose shortest path is unique (left out where there are none)."""
    n = len(questions)
    shape = questions.shape
    questions, predictions = questions.reshape(shape), predictions.reshape(shape)
    exact = (predictions == answers.reshape(shape)).reshape(n, -1).all(1)
    valid = np.array([path_problem(q, p) is None for q, p in zip(questions, predictions)])
    unique = np.array([solve_maze(q)[1] == 1 for q in questions])
    scores = {"exact_accuracy": float(exact.mean()), "valid_shortest_path_accuracy": float(valid.mean())}
    if unique.any():
        scores["exact_accuracy_unique"] = float(exact[unique].mean())
    return {**scores, "unique_path_mazes": int(unique.sum()), "mazes": n}


def long_path(side: int, style: str = "carved") -> int:
    """The shortest-path floor for comparing sides. Carved and perfect kinds: 0.1 side^2 (8 at 9x9, 90 at 30x30).
    Scattered: Maze-Hard's 110 at 30x30, scaled by the area up to that side and by the side beyond it (random walls
    give no longer paths: the area rule would ask 425 steps at 59x59; 216 there). The kinds
    with many loops or open fields (and mixed): 1.5 side (their shortest paths run nearly straight)."""
    if style == "scattered":
        return round(110 * side * side / 900) if side <= 30 else round(110 * side / 30)
    if style in ("many-loops", "start-inside", "open-field", "mixed"):
        return max(2, round(1.5 * side))
    return max(2, int(0.1 * side * side))


def accuracy_by_depth(model, questions: np.ndarray, answers: np.ndarray, depths: list[int],
                      fixed_point_steps: list[int] = (), batch_size: int = 50, progress: bool = True) -> dict:
    """One run of max(depths) supervision steps per maze: both scores after each depth in `depths`, and at each
    stopping rule k in `fixed_point_steps` (the answer held k steps or the Q head halted; `*_without_q_halt`: the
    fixed point alone), with the mean step where it stopped. For thinking longer than training did."""
    import torch
    from tqdm.auto import tqdm

    from ...models.lstm_trm.modeling_lstmtrm import fixed_point_stop

    device = next(model.parameters()).device
    depths = sorted(set(depths))
    rules = [(k, with_q) for k in fixed_point_steps for with_q in (True, False)]
    at_depth, stops = [], {rule: ([], []) for rule in rules}
    side = questions.shape[-1]
    for begin in tqdm(range(0, len(questions), batch_size), desc=f"{side}x{side} mazes, {depths[-1]} steps",
                      unit="batch", disable=not progress, leave=False):
        batch = questions[begin:begin + batch_size]
        run = model.solve(torch.from_numpy(batch.reshape(len(batch), -1)).to(device), max_steps=depths[-1],
                          return_trace=True, run_to_max=True)
        at_depth.append(run.trace[[d - 1 for d in depths]].cpu().numpy())
        for (k, with_q), (got, steps) in stops.items():
            answer, step = fixed_point_stop(run.trace, run.q_halt_trace if with_q else None, k)
            got.append(answer.cpu().numpy())
            steps.append(step.cpu().numpy())
    at_depth = np.concatenate(at_depth, axis=1)
    results = {"mazes": len(questions), "by_depth": {}, "at_stop": {}, "at_stop_without_q_halt": {}}
    for k, depth in enumerate(depths):
        results["by_depth"][str(depth)] = without_count(score_mazes(questions, answers, at_depth[k]))
    for (k, with_q), (got, steps) in stops.items():
        scores = without_count(score_mazes(questions, answers, np.concatenate(got)))
        key = "at_stop" if with_q else "at_stop_without_q_halt"
        results[key][str(k)] = {**scores, "mean_stop_step": float(np.concatenate(steps).mean())}
    return results


def without_count(scores: dict) -> dict:
    return {key: value for key, value in scores.items() if key not in ("mazes", "unique_path_mazes")}


def evaluate_mazes(model, questions: np.ndarray, answers: np.ndarray, batch_size: int = 64,
                   max_steps: int | None = None, fixed_point_steps: int | None = None) -> dict:
    """Solve every maze with `model` by TRM's convention (all `halt_max_steps` steps; the Q head's halt beside) and
    score both answers. `fixed_point_steps=k` adds two stops read off the same run: where the Q head halts or the
    answer has held for k steps (`*_at_stop`, `mean_stop_step`), and where the answer has held k steps, the Q head not
    asked (`*_at_fixed_point`, `mean_fixed_point_step`): on mazes larger than training's the Q head halts too early."""
    import torch

    from ...models.lstm_trm.modeling_lstmtrm import fixed_point_stop

    device = next(model.parameters()).device
    rules = ("max", "q_halt") + (("stop", "fixed_point") if fixed_point_steps else ())
    answers_by_rule = {rule: [] for rule in rules}
    steps_by_rule = {rule: [] for rule in rules[1:]}
    for start in range(0, len(questions), batch_size):
        x = torch.from_numpy(questions[start:start + batch_size].reshape(len(questions[start:start + batch_size]), -1))
        out = model.solve(x.to(device), max_steps=max_steps, run_to_max=True, return_trace=bool(fixed_point_steps))
        read = {"max": (out.final_predictions, None), "q_halt": (out.predictions, out.halted_at)}
        if fixed_point_steps:
            read["stop"] = fixed_point_stop(out.trace, out.q_halt_trace, fixed_point_steps)
            read["fixed_point"] = fixed_point_stop(out.trace, None, fixed_point_steps)
        for rule, (answer, step) in read.items():
            answers_by_rule[rule].append(answer.cpu().numpy())
            if step is not None:
                steps_by_rule[rule].append(step.cpu().numpy())
    scores = {rule: score_mazes(questions, answers, np.concatenate(got)) for rule, got in answers_by_rule.items()}
    mean_step = {rule: float(np.concatenate(steps).mean()) for rule, steps in steps_by_rule.items()}
    results = scores["max"]
    results.update({f"{key}_at_q_halt": value for key, value in without_count(scores["q_halt"]).items()},
                   mean_steps=mean_step["q_halt"])
    if fixed_point_steps:
        for rule, suffix in (("stop", "at_stop"), ("fixed_point", "at_fixed_point")):
            results.update({f"{key}_{suffix}": value for key, value in without_count(scores[rule]).items()})
        results.update(mean_stop_step=mean_step["stop"], mean_fixed_point_step=mean_step["fixed_point"],
                       fixed_point_steps=fixed_point_steps)
    return results
