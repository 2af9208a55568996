"""Nothing lost, nothing silent: what keeps a training run from ending in a broken model or in lost work.

- `DivergenceGuard` stops training at the first non-finite gradient, before the optimizer step, so the weights stay
  the last finite ones; `StatefulTrainer` installs it.
- `train_or_keep` runs `trainer.train` and turns a divergence, a Ctrl-C, a SIGTERM or a failure into a `RunError`
  whose one line says the step, the checkpoint to resume from and what to try; all but a divergence first save a
  checkpoint.
- `save_final_model` refuses to save non-finite weights; `after_training` turns a failure (or a signal) during what
  comes after the save (evaluation, card, upload) into a `RunError` that says where the trained model is.
- Saves finish whole: a signal during one waits for it (`signals_held`); a checkpoint cut off anyway (a kill) is
  recognised (`incomplete`) and never resumed from.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME  # the file Trainer writes last into a checkpoint
from transformers.trainer_pt_utils import safe_globals
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..checks import first_line, non_finite


class RunError(RuntimeError):
    """A training run ended early or in part; the message (one line) says what is kept and what to do."""


def incomplete(folder: str | Path) -> str | None:
    """Why a checkpoint folder is not a whole checkpoint (None when it is). Trainer writes `trainer_state.json` last
    (`StatefulTrainer` writes its carried state and EMA before it), so a folder without a readable one was cut off
    while being saved (a kill, a full disk)."""
    state = Path(folder) / TRAINER_STATE_NAME
    if not state.is_file():
        return f"no {TRAINER_STATE_NAME}: the run was stopped while saving it"
    try:
        json.loads(state.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"its {TRAINER_STATE_NAME} is cut short: the run was stopped while saving it"
    return None


def last_checkpoint(output_dir: str, say: bool = False) -> str | None:
    """The newest whole checkpoint-N folder of `output_dir` (None if there is none); with `say`, a line for each newer
    one skipped as incomplete."""
    if not os.path.isdir(output_dir):
        return None
    folders = sorted((path for path in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                      if path.is_dir() and path.name.split("-")[-1].isdigit()),
                     key=lambda path: int(path.name.split("-")[-1]), reverse=True)
    for folder in folders:
        why = incomplete(folder)
        if why is None:
            return str(folder)
        if say:
            print(f"skipping {folder}: an incomplete checkpoint ({why})", flush=True)
    return None


class DivergenceGuard(TrainerCallback):
    """Raises `RunError` when the gradients about to be applied hold NaN or infinity (the loss diverged), before
    the optimizer step: the model keeps its last finite weights. Gradients are already summed over processes here,
    so every process stops at the same step."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())
        if not torch.isfinite(norm):
            step = state.global_step + 1
            kept = last_checkpoint(args.output_dir)
            dtype = getattr(getattr(model, "config", None), "forward_dtype", "float32")
            low_precision = (" or float32 (--forward_dtype float32, no --bf16)"
                             if args.bf16 or dtype != "float32" else "")
            raise RunError(
                f"training diverged at step {step}: the gradient norm is {float(norm)} "
                f"({'last good checkpoint: ' + kept if kept else 'no checkpoint was saved before it'}); "
                f"try a lower --learning_rate (now {args.learning_rate:g}) or --max_grad_norm (now "
                f"{args.max_grad_norm:g}){low_precision}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, `kill`, schedulers and `docker stop` send) during training: handled as Ctrl-C is."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises `Terminated` inside the block, so that a command ends as Ctrl-C ends it: saying what is kept.
    Only in the main thread (where Python delivers signals); the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait until the block (a save) is done, then take effect: a second signal while a
    checkpoint or the final model is written cannot leave it half written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if received:
        raise Terminated() if received[0] == signal.SIGTERM else KeyboardInterrupt()


def train_or_keep(trainer, resume_from_checkpoint=None) -> None:
    """`trainer.train`, where any way it ends early is a one-line `RunError`: a divergence says where the last good
    checkpoint is; Ctrl-C, SIGTERM or a failure after the first step (an evaluation that raises, say) first save a
    checkpoint of the last completed step and the message says how to resume from it."""
    with terminate_as_interrupt():
        _train_or_keep(trainer, resume_from_checkpoint)


def _train_or_keep(trainer, resume_from_checkpoint) -> None:
    try:
        trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    except RunError:
        raise
    except (KeyboardInterrupt, Exception) as error:  # noqa: BLE001  (whatever stopped it, keep the work)
        what = ("terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"
                if isinstance(error, KeyboardInterrupt) else f"failed ({type(error).__name__}: {first_line(error)})")
        step = trainer.state.global_step
        if step == 0:
            if isinstance(error, KeyboardInterrupt):
                raise RunError(f"training {what} before the first optimizer step: nothing to save") from None
            raise  # nothing to keep: the error as it is
        folder = Path(trainer.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{step}"
        try:
            with signals_held():  # a second Ctrl-C or SIGTERM waits for the checkpoint to be whole
                trainer._save_checkpoint(trainer.model, trial=None)
        except KeyboardInterrupt:
            pass  # the checkpoint is whole: the run ends below as it was going to
        except Exception as save_error:  # noqa: BLE001
            kept = last_checkpoint(trainer.args.output_dir)
            raise RunError(f"training {what} at step {step}, and saving a checkpoint failed too "
                           f"({type(save_error).__name__}: {first_line(save_error)}); last checkpoint: {kept}") \
                from error
        fix = "" if isinstance(error, KeyboardInterrupt) else "fix the cause, then "
        raise RunError(f"training {what} at step {step}: checkpoint saved in {folder}; {fix}resume with the same "
                       f"command and --resume_from_checkpoint {folder}") from error


def save_final_model(trainer, output_dir: str | Path) -> None:
    """Save the final model (the EMA weights where there are some), never a non-finite one."""
    with trainer.ema_weights() as model:
        broken = non_finite(model.state_dict().items())
    if broken:
        raise RunError(f"not saving the final model: {len(broken)} tensor(s) hold NaN or infinity ({broken[0]}, ...); "
                       f"the last checkpoint is {last_checkpoint(str(output_dir))}")
    with signals_held():  # never a half-written final model
        trainer.save_model(str(output_dir))
        trainer.save_state()


@contextlib.contextmanager
def after_training(what: str, output_dir: str | Path):
    """For the work after the final model is saved: a failure says that the model is safe, and where."""
    try:
        yield
    except RunError:
        raise
    except KeyboardInterrupt as error:
        stopped = "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"
        raise RunError(f"{what} {stopped} after training; the trained model is saved in "
                       f"{Path(output_dir).resolve()}") from error
    except Exception as error:  # noqa: BLE001  (any failure here must not hide where the model is)
        raise RunError(f"{what} failed after training ({type(error).__name__}: {first_line(error)}); the trained model "
                       f"is saved in {Path(output_dir).resolve()}") from error


def finite_json(value):
    """`value` with every NaN or infinity replaced by None, so that `json.dumps` writes valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def verify_checkpoint(folder: str | Path) -> None:
    """Read every weight and state file of a checkpoint before resuming from it: a truncated or corrupted file is a
    one-line `ValueError` naming it, not a traceback halfway into the run."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--resume_from_checkpoint: no such folder: {folder}")
    why = incomplete(folder)
    if why is not None:
        raise ValueError(f"--resume_from_checkpoint: {folder} is an incomplete checkpoint ({why}): resume from an "
                         "earlier one")
    if not any(folder.glob("*.safetensors")) and not (folder / "pytorch_model.bin").exists():
        raise ValueError(f"--resume_from_checkpoint: {folder} holds no model weights: give a checkpoint-N folder")
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".safetensors":
                load_file(str(path))
            elif path.name in ("optimizer.pt", "scheduler.pt") or path.name.startswith("rng_state"):
                with safe_globals():  # the numpy RNG state, allowed as Trainer allows it when it resumes
                    torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  (safetensors, pickle and zip errors alike)
            raise ValueError(f"{path} is truncated or corrupted ({type(error).__name__}: {first_line(error)}): "
                             "resume from an earlier checkpoint") from None
