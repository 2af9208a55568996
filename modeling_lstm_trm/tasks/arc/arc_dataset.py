"""ARC training data as TRM builds it, computed on the fly instead of written to disk.

Every task of the training splits gets its augmented versions (`augmentations_of`), and every version its own puzzle
identifier (0 is the blank one), so the puzzle embedding learns each version's rule from its demonstration pairs.
Training pairs: the demonstration pairs of every task, and the test pairs of every task except those of the test
split (whose test outputs are what is scored and never reach training). Training items are placed on the canvas at a
random offset (input and output alike); evaluation puts grids at the top-left corner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ...models.lstm_trm.modeling_lstmtrm import IGNORE_INDEX
from .arc_data import IDENTITY, PAD, ArcTask, Augmentation, augmentations_of, encode, load_split, parse_task

BLANK_IDENTIFIER = 0


@dataclass
class ArcVersions:
    """The augmented versions of some tasks. Version k of task t is `augmentations[t][k]` (k = 0: the task as it is)
    with puzzle identifier `first_identifier[t] + k`."""

    tasks: dict[str, ArcTask]
    augmentations: dict[str, list[Augmentation]]
    first_identifier: dict[str, int]
    num_identifiers: int

    def version(self, task_id: str, k: int) -> tuple[int, Augmentation]:
        """Version k of the task: its puzzle identifier and augmentation."""
        return self.first_identifier[task_id] + k, self.augmentations[task_id][k]

    def versions(self, task_id: str) -> list[tuple[int, Augmentation]]:
        return [self.version(task_id, k) for k in range(len(self.augmentations[task_id]))]


VERSIONS_FILE = "arc_versions.json"


def save_versions(versions: ArcVersions, folder, side: int) -> None:
    """What a trained model needs beside its weights to be asked about a task: which identifiers are which versions."""
    (Path(folder) / VERSIONS_FILE).write_text(json.dumps({
        "canvas_size": side, "num_identifiers": versions.num_identifiers,
        "tasks": {t: {"first_identifier": versions.first_identifier[t],
                      "augmentations": [aug.name for aug in versions.augmentations[t]]} for t in versions.tasks}}))


def load_versions(folder, tasks: dict[str, ArcTask]) -> tuple[ArcVersions, int]:
    """The versions a model was trained on (from its folder) for those of `tasks` it knows, and its canvas side."""
    path = Path(folder) / VERSIONS_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {VERSIONS_FILE}: give the folder of a model trained with --task arc")
    saved = json.loads(path.read_text())
    known = {t: saved["tasks"][t] for t in tasks if t in saved["tasks"]}
    versions = ArcVersions({t: tasks[t] for t in known},
                           {t: [Augmentation.from_name(n) for n in v["augmentations"]] for t, v in known.items()},
                           {t: v["first_identifier"] for t, v in known.items()}, saved["num_identifiers"])
    return versions, saved["canvas_size"]


# TRM's ARC datasets (`dataset/build_arc_dataset.py`): identifier i of `identifiers.json` names version
# `<task>|||t<transform>|||<colour permutation>` (or the task as it is; 0 is "<blank>"), and `test_puzzles.json` holds
# the tasks scored on their test inputs. Its colour permutation is ours; its transform ids map to ours (same grids):
TRM_SEPARATOR = "|||"
TRM_TRANSFORMS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 5, 5: 7, 6: 4, 7: 6}  # identity, 3 turns, flip lr, flip ud, 2 diagonals
TRM_FILES = ("identifiers.json", "test_puzzles.json")


def is_trm_folder(data_dir) -> bool:
    return data_dir is not None and all((Path(data_dir) / name).is_file() for name in TRM_FILES)


def load_trm_folder(data_dir) -> tuple[dict[str, ArcTask], list[str]]:
    """The test tasks of a TRM ARC folder (test outputs inside, where its builder had them) and its identifiers."""
    folder = Path(data_dir)
    puzzles = json.loads((folder / "test_puzzles.json").read_text())
    identifiers = json.loads((folder / "identifiers.json").read_text())
    if not isinstance(puzzles, dict) or not isinstance(identifiers, list):
        raise ValueError(f"{folder}: test_puzzles.json must map task ids to tasks, identifiers.json list names")
    tasks = {task_id: parse_task(task_id, task, None, str(folder / "test_puzzles.json"), need_solutions=False)
             for task_id, task in puzzles.items()}
    return tasks, identifiers


def versions_from_trm(identifiers: list[str], tasks: dict[str, ArcTask], where: str) -> ArcVersions:
    """The versions of `tasks` a TRM ARC model knows, from its dataset's identifiers (see TRM_TRANSFORMS). Each
    task's identifiers must be one run starting with the task as it is, as TRM's builder numbers them."""
    by_task: dict[str, list[tuple[int, Augmentation]]] = {}
    for identifier, name in enumerate(identifiers):
        if identifier == 0 or not isinstance(name, str):
            continue
        task_id, *parts = name.split(TRM_SEPARATOR)
        if task_id not in tasks:
            continue
        if parts:
            transform, colours = (parts + ["", ""])[:2]
            if len(parts) != 2 or not transform[1:].isdigit() or int(transform[1:]) not in TRM_TRANSFORMS:
                raise ValueError(f"{where}, identifier {identifier}: {name!r} is not TRM's "
                                 "<task>|||t<transform>|||<colours>")
            augmentation = Augmentation.from_name(f"t{TRM_TRANSFORMS[int(transform[1:])]}c{colours}")
        else:
            augmentation = IDENTITY
        by_task.setdefault(task_id, []).append((identifier, augmentation))
    for task_id, entries in by_task.items():
        numbers = [identifier for identifier, _ in entries]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))) or entries[0][1] != IDENTITY:
            raise ValueError(f"{where}: the identifiers of task {task_id} are not one run starting with the task as "
                             "it is (TRM's builder numbers them so)")
    return ArcVersions({t: tasks[t] for t in by_task}, {t: [a for _, a in e] for t, e in by_task.items()},
                       {t: e[0][0] for t, e in by_task.items()}, len(identifiers))


def trained_versions(model_dir, data_dir: str | None, split: str | None) -> tuple[ArcVersions, int, str]:
    """The versions a trained model knows of the tasks of `split` in `data_dir` (both default to its run's), its
    canvas side, and the split; the split's test outputs are read where its solutions file exists. A TRM ARC folder
    as `data_dir` (identifiers.json, test_puzzles.json) gives its test puzzles, split "trm_test"."""
    if is_trm_folder(data_dir):
        tasks, _ = load_trm_folder(data_dir)
        versions, side = load_versions(model_dir, tasks)
        return versions, side, "trm_test"
    run = Path(model_dir) / "training_run.json"
    data = (json.loads(run.read_text()).get("data") or {}) if run.is_file() else {}
    data_dir, split = data_dir or data.get("source_dir"), split or data.get("test_split")
    if not data_dir or not split:
        raise ValueError("--task arc needs --data_dir and --split (the model folder does not name them)")
    tasks = load_split(data_dir, split, need_solutions=False)
    versions, side = load_versions(model_dir, tasks)
    return versions, side, split


def build_versions(tasks: dict[str, ArcTask], num_augmentations: int, seed: int, progress: bool = True) -> ArcVersions:
    """Up to `num_augmentations` de-duplicated versions per task besides the original, from a generator seeded by
    `seed` (the same seed gives the same versions and identifiers on every process)."""
    rng = np.random.default_rng(seed)
    augmentations, first_identifier, next_id = {}, {}, BLANK_IDENTIFIER + 1
    for task_id, task in tqdm(tasks.items(), desc="augmenting tasks", disable=not progress):
        augmentations[task_id] = augmentations_of(task, num_augmentations, rng)
        first_identifier[task_id] = next_id
        next_id += len(augmentations[task_id])
    return ArcVersions(tasks, augmentations, first_identifier, next_id)


def training_pairs(tasks: dict[str, ArcTask], held_out: set[str]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """What each task may teach: its demonstration pairs, plus its test pairs unless the task is `held_out` (a task of
    the test split, scored on its test outputs) or a test output is unknown."""
    pairs = {}
    for task_id, task in tasks.items():
        extra = [] if task_id in held_out else [(q, a) for q, a in task.test if a is not None]
        pairs[task_id] = list(task.train) + extra
    return pairs


def encode_pair(question: np.ndarray, answer: np.ndarray, side: int, top: int = 0, left: int = 0) \
        -> tuple[np.ndarray, np.ndarray]:
    """input_ids and labels of one pair on the canvas; the labels ignore the padding (as TRM's ignore_label_id)."""
    labels = encode(answer, top, left, side).astype(np.int64)
    labels[labels == PAD] = IGNORE_INDEX
    return encode(question, top, left, side).astype(np.int64).reshape(-1), labels.reshape(-1)


class ArcTrainingPairs:
    """Map-style dataset of augmented, translated training pairs: item i draws a task, one of its versions and one of
    its pairs, and an offset on the canvas, from a generator seeded by (seed, i), so every item is reproducible (exact
    resume) without being stored. Items: input_ids, labels, puzzle_identifiers (the version's)."""

    def __init__(self, versions: ArcVersions, pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]], side: int,
                 length: int, seed: int = 0, translate: bool = True):
        self.versions, self.side, self.length, self.seed, self.translate = versions, side, length, seed, translate
        self.task_ids = [task_id for task_id in versions.tasks if pairs.get(task_id)]
        if not self.task_ids:
            raise ValueError("no training pairs: every task is empty")
        self.pairs = pairs

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        import torch

        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        task_id = self.task_ids[int(rng.integers(len(self.task_ids)))]
        identifier, aug = self.versions.version(task_id, int(rng.integers(len(self.versions.augmentations[task_id]))))
        question, answer = self.pairs[task_id][int(rng.integers(len(self.pairs[task_id])))]
        question, answer = aug.apply(question), aug.apply(answer)
        top = left = 0
        if self.translate:
            top = int(rng.integers(self.side - max(question.shape[0], answer.shape[0]) + 1))
            left = int(rng.integers(self.side - max(question.shape[1], answer.shape[1]) + 1))
        input_ids, labels = encode_pair(question, answer, self.side, top, left)
        return {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels),
                "puzzle_identifiers": torch.tensor(identifier)}
