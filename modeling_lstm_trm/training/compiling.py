"""The recursion compiled: `torch.compile` of LSTM-TRM's two updates (h's and c's: the T x (n + 1) trunk passes of every
supervision step, with their gates and norms), the eager path kept for where the compiler fails. A runtime choice
(`--compile_recursion`), not the model's: the weights, the config and the saved folder are the same either way.

Measured on a 2-core AVX2 CPU (benchmarks/README.md, "Speed"): 1.28x the training steps per second at the main job's
size (hidden 64), where small kernels dominate; 1.46x the solving throughput on 30x30 mazes (87.4 vs 59.8
maze-steps/s); 1.04x at TRM's Sudoku-MLP shapes, which are matrix-bound.
"""

from __future__ import annotations

import os
import shutil
import warnings

import torch

COMPILE_MODES = ("auto", "none", "default", "max-autotune-no-cudagraphs", "reduce-overhead")


class CompiledOrEager:
    """A function compiled with `torch.compile`, run eagerly instead (from then on, with one warning) where compiling
    fails: no C++ compiler for the CPU backend, a platform the compiler does not support."""

    def __init__(self, function, mode: str | None):
        self.eager, self.compiled = function, torch.compile(function, mode=mode)

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as error:  # noqa: BLE001  (whatever the compiler could not do, the eager path can)
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {str(error).strip()[:200]}); the "
                              "recursion runs eagerly", stacklevel=2)
                self.compiled = None
        return self.eager(*args, **kwargs)


def compiler_available(device_type: str) -> bool:
    """Where `torch.compile` can work at all: a GPU, or a CPU with a C++ compiler for its kernels."""
    return device_type == "cuda" or shutil.which(os.environ.get("CXX", "g++")) is not None


AUTO_MIN_STEPS = 1000  # "auto" compiles a run of at least this many steps: compiling takes seconds, once


def compile_recursion(model, mode: str = "auto", device_type: str = "cpu", steps: int | None = None) -> bool:
    """Compile the two updates of an LSTM-TRM model (`LSTMTRMForPuzzleSolving` or its backbone) in place; `mode`:
    "none", "auto" (where a compiler is available and the run, `steps` long, repays the seconds compiling takes), or
    a `torch.compile` mode. Returns whether it compiled."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"--compile_recursion must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode == "none" or (mode == "auto" and (not compiler_available(device_type)
                                              or (steps is not None and steps < AUTO_MIN_STEPS))):
        return False
    cell = getattr(model, "model", model).cell
    for update in ("update_h", "update_c"):  # n + 1 trunk passes a recursion, each with its gates and norms
        if not isinstance(getattr(cell, update), CompiledOrEager):
            setattr(cell, update, CompiledOrEager(getattr(cell, update), None if mode == "auto" else mode))
    return True
