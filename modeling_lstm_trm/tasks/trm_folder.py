"""TRM's prebuilt dataset folders (`dataset/build_*_dataset.py`): `{train,test}/all__inputs.npy` and
`all__labels.npy`, one flattened grid per row, beside `all__puzzle_identifiers.npy`, `all__puzzle_indices.npy`,
`all__group_indices.npy` and `dataset.json`. Read and written here once; what the tokens mean is the task's business."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ARRAYS = ("all__inputs.npy", "all__labels.npy")


def read_trm_folder(data_dir, split: str, builder: str, inputs_range: tuple[int, int],
                    labels_range: tuple[int, int], meaning: str, cells: int | None = None) -> tuple[np.ndarray, ...]:
    """The inputs and labels of one split as int64 arrays (n, cells), checked: both files there (else the error names
    TRM's `builder` script), one shape, a square number of cells (`cells` where given, also against dataset.json), and
    every token within its range (the error names the file, the row and `meaning`)."""
    folder = Path(data_dir) / split
    missing = [name for name in ARRAYS if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"--data_dir {data_dir}: no {split}/{missing[0]} (a folder built by TRM's {builder} has "
                         "{train,test}/all__inputs.npy, all__labels.npy, ...)")
    meta_path = folder / "dataset.json"
    if cells is not None and meta_path.is_file():
        seq_len = json.loads(meta_path.read_text()).get("seq_len", cells)
        if seq_len != cells:
            raise ValueError(f"{meta_path}: seq_len {seq_len}, expected {cells}")
    arrays = [np.load(folder / name, allow_pickle=False) for name in ARRAYS]
    for name, array in zip(ARRAYS, arrays):
        if array.ndim != 2 or (cells is not None and array.shape[1] != cells):
            raise ValueError(f"{folder / name}: expected shape (n, {cells or 'cells'}), got {array.shape}")
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"{folder}: inputs {arrays[0].shape} and labels {arrays[1].shape} differ in shape")
    if round(arrays[0].shape[1] ** 0.5) ** 2 != arrays[0].shape[1]:
        raise ValueError(f"{folder}: {arrays[0].shape[1]} cells is not a square grid")
    for name, array, (low, high) in zip(ARRAYS, arrays, (inputs_range, labels_range)):
        bad = np.flatnonzero(((array < low) | (array > high)).any(1))
        if len(bad):
            raise ValueError(f"{folder / name}, row {bad[0]}: values must be {low}-{high} ({meaning})")
    return tuple(array.astype(np.int64) for array in arrays)


def write_trm_folder(data_dir, split: str, inputs: np.ndarray, labels: np.ndarray, vocab_size: int) -> None:
    """Grids (n, cells) as a TRM prebuilt folder: one example per puzzle, one puzzle per group, no identifiers (for
    tests, and for handing our puzzles to TRM's own training script)."""
    folder = Path(data_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    n, cells = inputs.shape
    arrays = {"inputs": inputs.astype(np.uint8), "labels": labels.astype(np.uint8),
              "puzzle_identifiers": np.zeros(n, dtype=np.int32), "puzzle_indices": np.arange(n + 1, dtype=np.int32),
              "group_indices": np.arange(n + 1, dtype=np.int32)}
    for name, array in arrays.items():
        np.save(folder / f"all__{name}.npy", array)
    (folder / "dataset.json").write_text(json.dumps({
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": vocab_size, "seq_len": cells,
        "num_puzzle_identifiers": 1, "total_groups": n, "mean_puzzle_examples": 1.0, "total_puzzles": n,
        "sets": ["all"]}))
