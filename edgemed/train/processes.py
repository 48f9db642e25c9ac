"""How many training processes a run has, as the launcher set them up, and what the manifest says.

edgemed has no launcher of its own: ``accelerate launch`` (or ``torchrun``) starts N copies of
``edgemed train`` and tells each its place through ``WORLD_SIZE`` / ``RANK``; trl and accelerate
do the rest (gloo on CPU, NCCL on GPUs). This module only reads that layout, so the config check
can size GRPO's global batch and the CLI can print its summary once, not once per process.

    accelerate launch --multi_gpu --num_processes 2 -m edgemed.cli train --config smollm2_heart_grpo_cpu

On a CPU-only machine ``--multi_gpu`` is what makes accelerate start several processes (through
torchrun); ``accelerate launch --cpu --num_processes 2`` starts one unless mpirun is configured.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from edgemed.console import is_main_rank  # noqa: F401  (the terminal prints from that process only)


def launched_processes(environ: Mapping[str, str] = os.environ) -> int:
    """Processes in this run: ``WORLD_SIZE`` set by torchrun / ``accelerate launch``, else 1.

    >>> launched_processes({}), launched_processes({"WORLD_SIZE": "2", "RANK": "1"})
    (1, 2)
    """
    try:
        return max(1, int(environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def global_batch(per_device: int, accumulation: int, processes: int) -> int:
    """Completions generated per optimizer step across all processes (trl's generation batch
    when ``steps_per_generation`` is left at ``gradient_accumulation_steps``); GRPO needs it to
    hold whole groups, i.e. be a multiple of ``num_generations``.

    >>> global_batch(per_device=2, accumulation=1, processes=2)
    4
    """
    return per_device * accumulation * processes


def process_record(accelerator: Any) -> dict[str, Any]:
    """The manifest's record of how the run was spread: process count, backend, accelerate's type.

    >>> from types import SimpleNamespace
    >>> process_record(SimpleNamespace(num_processes=2, distributed_type="MULTI_CPU",
    ...                                state=SimpleNamespace(backend="gloo")))
    {'processes': 2, 'backend': 'gloo', 'distributed_type': 'MULTI_CPU'}
    """
    kind = accelerator.distributed_type
    return {"processes": int(accelerator.num_processes),
            "backend": getattr(accelerator.state, "backend", None),
            "distributed_type": str(getattr(kind, "value", kind))}


def replicas_in_sync(accelerator: Any, model: Any) -> bool | None:
    """Whether every process ends training with the same trainable weights: the proof that the
    gradients were averaged, since each process trained on different completions. None with one
    process, or under DeepSpeed/FSDP, whose processes each hold only a shard of the weights.
    Every process must call it (it exchanges one digest per process).

    >>> from types import SimpleNamespace
    >>> replicas_in_sync(SimpleNamespace(num_processes=1, distributed_type="NO"), model=None) is None
    True
    """
    kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))
    if accelerator.num_processes == 1 or not kind.startswith("MULTI_"):
        return None
    import hashlib

    from accelerate.utils import gather_object

    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return len(set(gather_object([digest.hexdigest()]))) == 1


_INDEXED_CPU_LOADS = False


def allow_indexed_cpu_loads() -> None:
    """Let ``torch.load`` restore storages to ``cpu:N``, once per process.

    On a multi-process CPU run accelerate sets each process's device to ``cpu:0``, and
    transformers resumes the optimizer with ``map_location=args.device``; torch's own CPU loader
    only accepts the plain ``cpu`` and fails with "don't know how to restore data location ...
    (tagged with cpu:0)". This loader takes ``cpu:N`` as the CPU. Saving is untouched: its tagger
    claims no storage.

    >>> import io, torch
    >>> allow_indexed_cpu_loads()
    >>> buf = io.BytesIO(); torch.save(torch.ones(2), buf); _ = buf.seek(0)
    >>> torch.load(buf, map_location=torch.device("cpu", 0), weights_only=True)
    tensor([1., 1.])
    """
    global _INDEXED_CPU_LOADS
    if _INDEXED_CPU_LOADS:
        return
    import torch.serialization

    def restore(storage, location: str):
        return storage if location.startswith("cpu:") else None

    torch.serialization.register_package(11, lambda storage: None, restore)
    _INDEXED_CPU_LOADS = True
