"""The maze task's flags: training (`--task maze`), evaluation and solving, each checked before any work, every size
bounded (sides to MAX_SIDE, path lengths to what a side allows, supervision steps to MAX_STEPS)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...training.runs import SCHEDULE_BY_TIME_HELP
from ..arguments import (
    DataSourceArguments,
    EvaluationSourceArguments,
    at_least,
    check_path,
    check_steps,
)
from .mazes import LOOPS, MAX_SIDE, MAZE_STYLES, TIE_BREAKS, check_path_length, check_side
from .selection import SYMMETRIES


def check_loops(loops: float | None, style: str, uses_dataset: bool = False) -> None:
    """--maze_loops: a share in [0, 1), for generated carved mazes only."""
    if loops is None:
        return
    if not 0 <= loops < 1:
        raise ValueError(f"--maze_loops must be a share in [0, 1), got {loops}")
    if style != "carved" or uses_dataset:
        raise ValueError("--maze_loops shapes generated carved mazes: it does not go with "
                         + ("dataset flags" if uses_dataset else f"--maze_style {style}"))


STYLES_HELP = ("carved (depth-first corridors, a unique shortest path), scattered (Maze-Hard's kind: 30-50% of the "
               "cells walls at random, open fields, several shortest paths), wilson / kruskal / division (perfect "
               "mazes of other textures), many-loops / start-inside / open-field (where recurrent nets are known to "
               "fail), mixed (a random one of carved, scattered and those three per maze; kinds that seldom reach "
               "--min_path_length are redrawn, so a long floor leaves mostly carved mazes)")


def check_symmetries(symmetries: int, fixed_point_steps) -> None:
    """--symmetries: 1..8 images of the square, each stopped at its fixed point, so one --fixed_point_steps."""
    if not 1 <= symmetries <= SYMMETRIES:
        raise ValueError(f"--symmetries must be 1..{SYMMETRIES} (the images of a square), got {symmetries}")
    if symmetries > 1 and not fixed_point_steps:
        raise ValueError("--symmetries stops each image at its fixed point: give one --fixed_point_steps and "
                         "--max_steps")


def check_style(style: str) -> None:
    if style not in MAZE_STYLES:
        raise ValueError(f"--maze_style must be one of {', '.join(MAZE_STYLES)}, got {style}")


def scaled_path_length(min_path_length: int, side: int, maze_size: int) -> int:
    """--maze_sizes: each side's shortest path floor, --min_path_length scaled by the area relative to --maze_size."""
    return max(2, round(min_path_length * side * side / maze_size ** 2))


@dataclass
class MazeArguments(DataSourceArguments):
    recipe: str = field(default="cpu", metadata={
        "aliases": ["--preset"],
        "help": "cpu (small generated mazes that learn on 2 cores), loops (mazes with loops and open fields of sides "
                "9-15, for reading larger ones: Maze-Hard's kind) or maze-hard (TRM's 30x30 setting, for a GPU)."})
    maze_size: int | None = field(default=None, metadata={"help": f"Side of generated mazes (5..{MAX_SIDE})."})
    maze_sizes: list[int] | None = field(default=None, metadata={
        "help": "Several sides in one run (e.g. 7 9 11 13 15): the training and held-out mazes are shared out evenly "
                "among them, each side's shortest path at least --min_path_length scaled by its area (relative to "
                "--maze_size), all padded with walls to the largest (or --canvas_size)."})
    min_path_length: int | None = field(default=None, metadata={
        "help": "Generated mazes' shortest path has at least this many steps."})
    maze_style: str = field(default="carved", metadata={
        "help": "Generated mazes: " + STYLES_HELP + "; where several shortest paths exist the answer marks one."})
    maze_loops: float | None = field(default=None, metadata={
        "help": f"Carved mazes: the share of inner walls knocked down after carving, which makes loops (default "
                f"{LOOPS}; 0: perfect mazes, one path between any two cells)."})
    train_mazes: int | None = field(default=None, metadata={"help": "Generated training mazes (augmented on the fly)."})
    eval_mazes: int | None = field(default=None, metadata={"help": "Generated held-out mazes."})
    canvas_size: int | None = field(default=None, metadata={
        "help": "Pad mazes with walls to this side, so the model also reads larger mazes (default: the mazes' side)."})
    distance_target: bool = field(default=False, metadata={
        "help": "Supervision beyond the path label (off by default: TRM trains on the path alone): a second head "
                "learns every cell's steps from S modulo 3 (or wall / unreachable), the state a breadth-first wave "
                "leaves."})
    parent_target: bool = field(default=False, metadata={
        "help": "Supervision beyond the path label (off by default; instead of --distance_target): a second head "
                "learns every cell's parent, the neighbour a breadth-first wave from S reached it from (the first "
                "one nearer S looking down, up, right, left: following them back from G marks the label's path), or "
                "wall / unreachable / S."})
    distance_front_speed: int = field(default=0, metadata={
        "help": "With --distance_target: ask each cell's distance only from the supervision step a wave from S moving "
                "this many cells a step would reach it (counting progressive training's steps), not before it can "
                "be known; 0 (default): every cell at every step."})
    augment: bool = field(default=True, metadata={
        "help": "Draw each training maze under a random one of the 8 rotations and reflections (TRM and HRM train "
                "Maze-Hard without: the maze-hard preset sets false)."})
    tie_break: str = field(default="frame", metadata={
        "help": "Which shortest path a training label marks where a maze has several: frame (re-marked after each "
                "rotation or reflection by one rule, walking back from G to the first neighbour nearer S looking "
                "down, up, right, left: a label the model can infer) or given (the given answer turned with the "
                "maze, as TRM's data builder does: the images of one maze mark different paths)."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    schedule_by_time: bool = field(default=False, metadata={"help": SCHEDULE_BY_TIME_HELP})
    ema_decay: float = field(default=0.999, metadata={"help": "EMA of the weights; 0 disables it."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})

    def check(self) -> None:
        """After the preset's defaults are in: every flag that cannot work, every size out of bounds."""
        self.check_source()
        self.check_paths()
        check_style(self.maze_style)
        if self.parent_target and self.distance_target:
            raise ValueError("--parent_target and --distance_target are two targets of the one second head: pass one")
        at_least(self.distance_front_speed, 0, "distance_front_speed")
        if self.distance_front_speed and not self.distance_target:
            raise ValueError("--distance_front_speed schedules the distance target: it goes with --distance_target")
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"--tie_break must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break}")
        if self.maze_style != "carved" and self.uses_dataset():
            raise ValueError("--maze_style chooses generated mazes: it does not go with dataset flags")
        check_loops(self.maze_loops, self.maze_style, self.uses_dataset())
        for flag in ("maze_size", "min_path_length", "train_mazes", "eval_mazes", "canvas_size"):
            at_least(getattr(self, flag), 1, flag)
        for flag in ("maze_size", "canvas_size"):
            if getattr(self, flag) is not None and not self.uses_dataset():
                check_side(getattr(self, flag), f"--{flag}")
        if self.maze_sizes is not None:
            if self.uses_dataset():
                raise ValueError("--maze_sizes generates mazes: it does not go with dataset flags")
            if not self.maze_sizes or len(set(self.maze_sizes)) != len(self.maze_sizes):
                raise ValueError(f"--maze_sizes must be distinct sides, got {self.maze_sizes}")
            for side in self.maze_sizes:
                check_side(side, "--maze_sizes")
            if self.canvas_size and self.canvas_size < max(self.maze_sizes):
                raise ValueError(f"--canvas_size {self.canvas_size} is smaller than --maze_sizes' largest, "
                                 f"{max(self.maze_sizes)}")
            if self.min_path_length and self.maze_size:
                for side in self.maze_sizes:
                    check_path_length(side, scaled_path_length(self.min_path_length, side, self.maze_size),
                                      self.maze_style, f"--min_path_length {self.min_path_length} scaled to side")
        elif self.maze_size and self.min_path_length and not self.uses_dataset():
            check_path_length(self.maze_size, self.min_path_length, self.maze_style)
        if self.canvas_size and self.maze_size and not self.uses_dataset() and self.canvas_size < self.maze_size:
            raise ValueError(f"--canvas_size {self.canvas_size} is smaller than --maze_size {self.maze_size}")


@dataclass
class MazeEvaluateArguments(EvaluationSourceArguments):
    """Maze-Hard-shaped CSV (--file, --dataset_name), a TRM folder, generated mazes of one side (--grid_size) or a
    table over several sides and depths (--sizes, --depths)."""

    grid_size: int | None = field(default=None, metadata={
        "help": "Generated mazes of this side (up to the model's canvas; any side for the conv mixer)."})
    sizes: list[int] | None = field(default=None, metadata={
        "help": "Generated mazes of each of these sides (any side for the conv mixer), shortest path >= 0.1 side^2 "
                "(scattered: 110 side^2 / 900): a table by side and --depths."})
    min_path_length: int | None = field(default=None, metadata={
        "help": "Shortest path of --grid_size mazes (default 8)."})
    depths: list[int] | None = field(default=None, metadata={
        "help": "With --sizes: read every maze after each of these supervision steps, in one run to the deepest "
                "(default: --max_steps or the model's)."})
    maze_style: str = field(default="carved", metadata={"help": "Generated mazes: " + STYLES_HELP + "."})
    maze_loops: float | None = field(default=None, metadata={
        "help": f"Generated carved mazes: the share of inner walls knocked down (default {LOOPS}; 0: no loops)."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Supervision steps (default: the model's halt_max_steps)."})
    fixed_point_steps: list[int] | None = field(default=None, metadata={
        "help": "Also stop a maze whose answer held this many steps, up to --max_steps, scored twice: with the Q "
                "head's halt as a second stop, and alone (several k with --sizes)."})
    symmetries: int = field(default=1, metadata={
        "help": "Test-time selection: read each maze in this many of its 8 rotations and reflections (itself "
                "first), each to its fixed point (the first --fixed_point_steps; the Q head not asked) within "
                "--max_steps, and keep the shortest of their answers along the way that marks one path from S to G "
                "(checked by the answer's shape, no search of the maze); scored beside the maze read once. Costs "
                "one run per image."})

    def check(self) -> None:
        self.check_source(generated=("grid_size", "sizes"))
        check_style(self.maze_style)
        check_loops(self.maze_loops, self.maze_style, self.grid_size is None and self.sizes is None)
        check_steps(self.max_steps, "max_steps")
        for flag in ("fixed_point_steps", "depths"):
            check_steps(getattr(self, flag) or [], flag)
        for side in ([self.grid_size] if self.grid_size is not None else []) + (self.sizes or []):
            check_side(side, "--sizes" if self.sizes else "--grid_size")
        if self.sizes is None:
            if self.depths:
                raise ValueError("--depths goes with --sizes")
            if self.fixed_point_steps and len(self.fixed_point_steps) > 1:
                raise ValueError("several --fixed_point_steps go with --sizes")
        elif self.min_path_length is not None:
            raise ValueError("--min_path_length goes with --grid_size (--sizes takes 0.1 side^2)")
        at_least(self.min_path_length, 1, "min_path_length")
        check_symmetries(self.symmetries, self.fixed_point_steps)
        if self.symmetries > 1 and self.depths:
            raise ValueError("--symmetries stops each image at its fixed point: give --max_steps, not --depths")
        if self.grid_size is not None:
            check_path_length(self.grid_size, self.path_length, self.maze_style)

    @property
    def path_length(self) -> int:
        return 8 if self.min_path_length is None else self.min_path_length


@dataclass
class MazeSolveArguments:
    file: str | None = field(default=None, metadata={"help": "A CSV file of Maze-Hard's shape (its questions)."})
    png: str | None = field(default=None, metadata={
        "help": "Draw the first maze after every supervision step into this PNG file (at most 16 evenly spaced "
                "steps; with --symmetries, the image its answer came from, turned back)."})
    max_steps: int | None = field(default=None, metadata={"help": "Supervision steps (default: the model's)."})
    fixed_point_steps: int | None = field(default=None, metadata={
        "help": "Stop each maze where its answer held this many steps, within --max_steps; the Q head is not asked "
                "(it halts too early on mazes larger than training's). Without it, every maze runs --max_steps."})
    symmetries: int = field(default=1, metadata={
        "help": "With --fixed_point_steps: read each maze in this many of its 8 rotations and reflections (itself "
                "first) and answer the shortest of their answers up to their stops that marks one path from S to "
                "G (checked by the answer's shape, as evaluate_model.py --symmetries; no search of the maze)."})

    def check(self) -> None:
        check_path(self.file, "file")
        check_steps(self.max_steps, "max_steps")
        check_steps(self.fixed_point_steps, "fixed_point_steps")
        check_symmetries(self.symmetries, self.fixed_point_steps)


@dataclass
class MazeDatasetArguments:
    """examples/make_dataset.py for mazes: N x N mazes in Maze-Hard's CSV shape."""

    num_puzzles: int = field(metadata={"help": "Mazes to write."})
    size: int = field(default=30, metadata={"help": f"Side of the grid (5..{MAX_SIDE})."})
    min_path_length: int = field(default=110, metadata={"help": "Shortest path of at least this many steps."})
    maze_style: str = field(default="carved", metadata={"help": STYLES_HELP + "."})
    maze_loops: float | None = field(default=None, metadata={
        "help": f"Carved: the share of inner walls knocked down (default {LOOPS}; 0: no loops)."})
    exclude: str | None = field(default=None, metadata={
        "help": "A CSV file whose mazes (and their symmetric images) to leave out: a held-out split."})
    seed: int = field(default=0, metadata={"help": "Seed of the generator."})

    def check(self) -> None:
        at_least(self.num_puzzles, 1, "num_puzzles")
        check_side(self.size, "--size")
        at_least(self.min_path_length, 1, "min_path_length")
        check_style(self.maze_style)
        check_loops(self.maze_loops, self.maze_style)
        check_path_length(self.size, self.min_path_length, self.maze_style)
        check_path(self.exclude, "exclude")
