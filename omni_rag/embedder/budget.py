"""How many tokens one forward pass may hold, and how to recognise running out of memory.

The default budget on CUDA comes from the memory left free after the model is loaded::

    per_token = dtype_bytes * (hidden * (layers + 12) + 3 * intermediate)
    budget    = 0.6 * free_bytes / per_token          (clamped to [2048, 262144])

``hidden * layers``: every layer's hidden state, which a ``output_hidden_states`` forward (the
card's, and a remote-code model's) keeps alive; ``12 * hidden``: residual, norms, q/k/v and the
attention output of the running layer; ``3 * intermediate``: the MLP's gate, up and product.
The 0.6 leaves room for the vision and audio towers, the allocator's fragmentation and the
batch being prepared. For Qwen2.5-Omni-3B in bf16 that is 262 kB per token: about 160k tokens
on an 80 GB H100. A wrong guess costs speed, not items: an out-of-memory batch is split.
"""

from __future__ import annotations

from typing import Any

import torch

#: Default on the CPU, where memory is plentiful but a bigger batch is no faster.
CPU_TOKENS_PER_BATCH = 16384
MIN_TOKENS_PER_BATCH = 2048
MAX_TOKENS_PER_BATCH = 262144
FREE_MEMORY_SHARE = 0.6


def tokens_per_batch_for(
    free_bytes: int, *, hidden: int, layers: int, intermediate: int, dtype_bytes: int
) -> int:
    """The documented formula above, as a pure function (tested without a GPU)."""
    per_token = dtype_bytes * (hidden * (layers + 12) + 3 * intermediate)
    budget = int(FREE_MEMORY_SHARE * free_bytes / per_token)
    budget = max(MIN_TOKENS_PER_BATCH, min(MAX_TOKENS_PER_BATCH, budget))
    return budget - budget % 256


def default_tokens_per_batch(backend: Any) -> int:
    """The budget for a backend's model: from free GPU memory on CUDA, a constant elsewhere."""
    model = getattr(backend, "model", None)
    if not isinstance(model, torch.nn.Module):
        return CPU_TOKENS_PER_BATCH
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.device.type != "cuda":
        return CPU_TOKENS_PER_BATCH
    model_config: Any = model.config
    config = model_config.get_text_config()
    free, _total = torch.cuda.mem_get_info(parameter.device)
    return tokens_per_batch_for(
        free,
        hidden=int(config.hidden_size),
        layers=int(config.num_hidden_layers),
        intermediate=int(getattr(config, "intermediate_size", 4 * config.hidden_size)),
        dtype_bytes=parameter.element_size(),
    )


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA (or other accelerator) allocation failure, as opposed to a bug."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_cached_memory() -> None:
    """Give the allocator's cached blocks back so the retry starts from a clean slate."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
