"""The training loop the learned maps share: Adam over epochs of minibatch losses, a Rich progress bar,
and early stopping on a validation loss that keeps the best weights."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import nullcontext

import torch

from ..compute import one_thread
from ..console import progress_bar
from ..errors import DinoscopeError


def optimise(net: torch.nn.Module, epoch: Callable[[], Iterator[torch.Tensor]], *, epochs: int,
             learning_rate: float, validate: Callable[[], float] | None = None, patience: int = 10,
             progress: bool = False, title: str = "training") -> dict:
    """Train `net` with Adam: each epoch runs the minibatch losses `epoch()` yields.

    With `validate`, the weights with the lowest validation loss are kept and training stops after
    `patience` epochs without improvement. Returns the epochs run and the final (or best validation) loss.
    """
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    best, best_state, stale, done, last = float("inf"), None, 0, 0, float("nan")
    bar = progress_bar(f"{title:>16}", enabled=progress, fields="loss {task.fields[loss]}", elapsed=True)
    # one thread on the CPU: a small network's steps lose far more to thread wake-ups than they gain
    on_cpu = next(net.parameters()).device.type == "cpu"
    with bar, one_thread() if on_cpu else nullcontext():
        task = bar.add_task(title, total=epochs, loss="–")
        for _ in range(epochs):
            done += 1
            net.train()
            total, count = 0.0, 0
            for loss in epoch():
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total, count = total + float(loss.detach()), count + 1
            last = total / max(count, 1)
            if last != last:  # NaN: the step size is too large for this data
                raise DinoscopeError(f"{title}: the loss became NaN; lower its learning_rate")
            if validate is not None:
                net.eval()
                with torch.no_grad():
                    last = validate()
                if last < best:
                    best, best_state, stale = last, copy.deepcopy(net.state_dict()), 0
                else:
                    stale += 1
            bar.update(task, advance=1, loss=f"{last:.4g}")
            if validate is not None and stale >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
        last = best
    net.eval()
    return {"epochs": done, "loss": round(last, 6)}
