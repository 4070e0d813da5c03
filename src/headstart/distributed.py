"""Data-parallel runs (`accelerate launch`, `torchrun`): how many processes share the run, and which one writes.

Every process runs the same command on the same data and seed; the engine splits each batch between them
(Accelerate's split_batches) and averages their gradients, so a run's --batch-size is the global batch whatever
the number of processes. Validation and prediction run whole in each process on identical weights, so every
process takes the same decisions (best epoch, early stop); only the main process writes (the run directory,
checkpoints, trackers).
"""

from __future__ import annotations

import os

from .errors import HeadstartError

__all__ = ["processes", "is_main", "on_cpu", "single_process_only", "check_batch_size"]


def processes() -> int:
    """How many processes this run has (WORLD_SIZE, as accelerate launch and torchrun set it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main() -> bool:
    """Whether this is the process that writes (global rank 0; RANK as the launchers set it)."""
    return os.environ.get("RANK", "0").strip() in ("0", "")


def on_cpu() -> bool:
    """Whether the run has no accelerator (GPU) to use: then several processes talk over gloo on the CPU."""
    import torch

    return not torch.cuda.is_available()


def single_process_only(what: str, hint: str) -> None:
    """Refuse `what` in a run of several processes, with the way to get it."""
    if processes() > 1:
        raise HeadstartError(f"{what} runs in one process, not {processes()}; {hint}")


def check_batch_size(batch_size: int, n_processes: int | None = None) -> None:
    """--batch-size is the global batch, split between the processes: it must split evenly."""
    n_processes = processes() if n_processes is None else n_processes
    if batch_size % n_processes:
        raise HeadstartError(f"--batch-size {batch_size} does not split evenly over {n_processes} processes; "
                             f"give a multiple of {n_processes}")
