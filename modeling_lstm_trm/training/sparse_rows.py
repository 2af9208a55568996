"""AdamW for the network, TRM's sign update for a puzzle embedding with hundreds of thousands of rows.

ARC gives every augmented version of every task its own puzzle identifier (TRM: about a million). A dense gradient and
Adam's two moments for that table would weigh three times the table and touch every row at every step. Here the
embedding is `nn.Embedding(sparse=True)`: backward makes a sparse gradient holding the batch's rows only, this
optimizer takes it away from `.grad` as soon as it is made (so gradient clipping and the divergence check see the dense
network only, as in TRM, whose embedding gradient is not clipped either), and `step` moves those rows and no other:

    w[rows] <- w[rows] * (1 - lr * weight_decay) - lr * sign(g[rows])

(the gradients of a row used several times in the batch are summed first). The rows keep no optimizer state, so
checkpoints hold the table once (plus its EMA), not three times.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from .runs import gather_in_order


class AdamWWithSparseRows(torch.optim.AdamW):
    """`torch.optim.AdamW` where param groups marked `sparse_rows=True` get the sign update above instead.

    The learning-rate schedule scales every group alike. Under several processes the sparse gradients are gathered
    from all of them before the update, so every process moves the same rows the same way (the embedding is then left
    out of DDP's own gradient averaging: the model lists it in `_ddp_params_and_buffers_to_ignore`).
    """

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.pending: dict[torch.Tensor, list[torch.Tensor]] = {}
        for group in self.param_groups:
            if group.get("sparse_rows"):
                for param in group["params"]:
                    self.pending[param] = []
                    param.register_post_accumulate_grad_hook(self._take_gradient)

    def _take_gradient(self, param: torch.Tensor) -> None:
        if not param.grad.is_sparse:
            raise ValueError("a sparse_rows group needs sparse gradients: build its embedding with sparse=True")
        self.pending[param].append(param.grad)
        param.grad = None

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group.get("sparse_rows"):
                for param in group["params"]:
                    self._sign_step(param, group["lr"], group["weight_decay"])
        return super().step(closure)  # the sparse groups have no .grad, so AdamW passes over them

    def _sign_step(self, param: torch.Tensor, lr: float, weight_decay: float) -> None:
        grads, self.pending[param] = self.pending[param], []
        if not grads:
            return
        grad = torch.stack(grads).sum(0) if len(grads) > 1 else grads[0]
        rows, values = _gather(grad.coalesce())
        if not bool(torch.isfinite(values).all()):
            from .safety import RunError
            raise RunError("training diverged: the puzzle embedding's gradient is not finite; try a lower "
                           "--learning_rate or --puzzle_emb_lr")
        if len(rows):
            param[rows] = param[rows] * (1 - lr * weight_decay) - lr * torch.sign(values).to(param.dtype)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for param in self.pending:
            self.pending[param] = []


def _gather(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows and summed gradients of a coalesced sparse gradient, over every process when there are several."""
    rows, values = grad.indices()[0], grad.values()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, values
    parts = gather_in_order([(rows.cpu(), values.cpu())])
    rows = torch.cat([r for r, _ in parts]).to(grad.device)
    values = torch.cat([v for _, v in parts]).to(grad.device)
    summed = torch.sparse_coo_tensor(rows.unsqueeze(0), values, grad.shape).coalesce()
    return summed.indices()[0], summed.values()
