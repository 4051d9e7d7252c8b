"""Step 2: the checkpoint loads the way users load it, every weight used, processor files sane.

The model is loaded once, through ``OmniEmbedder.from_pretrained`` (the path every user and
command takes); transformers' own loading report is captured on the way, so what is checked is
that load, not a second one made for the purpose.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from omni_rag.card import card_conversation
from omni_rag.embedder import ModelLoadError, OmniEmbedder
from omni_rag.embedder.loading import read_config
from omni_rag.verify.report import StepResult

#: Files a Qwen2.5-Omni checkpoint's processor is read from (any of each group will do).
PROCESSOR_FILES: dict[str, tuple[str, ...]] = {
    "config": ("config.json",),
    "preprocessor": ("preprocessor_config.json", "processor_config.json"),
    "tokenizer": ("tokenizer.json", "vocab.json"),
    "tokenizer config": ("tokenizer_config.json",),
    "chat template": ("chat_template.jinja", "chat_template.json", "tokenizer_config.json"),
}
#: What the chat template must produce for a card conversation with every modality.
TEMPLATE_MARKERS: tuple[str, ...] = ("<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>", "<|im_start|>user")


@dataclass
class LoadingInfo:
    """transformers' loading report for one ``from_pretrained`` call."""

    model_class: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


@contextlib.contextmanager
def capture_loading_info() -> Iterator[list[LoadingInfo]]:
    """Record the loading report of every model loaded inside the block.

    Wraps ``PreTrainedModel._finalize_model_loading`` (where transformers 5 settles missing,
    unexpected and mismatched keys); when a transformers version lacks it, nothing is recorded
    and the weights check says so rather than passing.
    """
    from transformers import PreTrainedModel

    records: list[LoadingInfo] = []
    original = PreTrainedModel.__dict__.get("_finalize_model_loading")
    if not isinstance(original, staticmethod):
        yield records
        return
    finalize = original.__func__

    def recording(model: Any, load_config: Any, loading_info: Any) -> Any:
        result = finalize(model, load_config, loading_info)
        records.append(
            LoadingInfo(
                model_class=type(model).__name__,
                missing=sorted(result.missing_keys),
                unexpected=sorted(result.unexpected_keys),
                mismatched=sorted(f"{k} {a}->{b}" for k, a, b in result.mismatched_keys),
            )
        )
        return result

    PreTrainedModel._finalize_model_loading = staticmethod(recording)  # type: ignore[method-assign]
    try:
        yield records
    finally:
        PreTrainedModel._finalize_model_loading = original  # type: ignore[method-assign]


def load_path(embedder: OmniEmbedder) -> str:
    """Which code runs the model: transformers' native classes (and their attention) or remote code."""
    model = getattr(embedder.backend, "model", None)
    if model is None:
        return f"backend {type(embedder.backend).__name__}"
    module = type(model).__module__
    if not module.startswith("transformers."):
        return f"remote code ({type(model).__name__} from {module.split('.')[-1]})"
    text_model = getattr(model, "language_model", None)
    attention = (
        "bidirectional attention"
        if type(text_model).__name__ == "BidirectionalThinkerTextModel"
        else "transformers' default (causal) attention"
    )
    return f"native {type(model).__name__}, {attention}"


def _is_head(key: str) -> bool:
    """The language-model head of a thinker (alone or inside a full Omni checkpoint)."""
    return key.startswith(("lm_head.", "thinker.lm_head."))


def weights_check(step: StepResult, records: list[LoadingInfo]) -> None:
    """Every checkpoint weight consumed, none missing or mis-shaped; the head the embedder drops aside.

    A plain Qwen2.5-Omni thinker checkpoint ships ``lm_head.weight``, which the embedder (pooled
    hidden states, no token prediction) never runs: a note. Other unused keys mean weights of
    another architecture and fail.
    """
    if not records:
        step.add("weights", "fail", "no loading report was captured (unsupported transformers version?)")
        return
    for info in records:
        missing = [k for k in info.missing if not _is_head(k)]
        unexpected = [k for k in info.unexpected if not _is_head(k)]
        problems = {"missing": missing, "unexpected": unexpected, "mismatched": info.mismatched}
        found = {kind: keys for kind, keys in problems.items() if keys}
        if found:
            listed = "; ".join(f"{kind}: {', '.join(keys[:10])}" for kind, keys in found.items())
            step.add("weights", "fail", f"{info.model_class}: {listed}", **found)
        else:
            step.add("weights", "pass", f"{info.model_class}: all weights consumed, none missing")
        heads = [k for k in info.unexpected if _is_head(k)]
        if heads:
            step.add(
                "unused head",
                "note",
                f"{info.model_class}: {', '.join(heads)} in the checkpoint is not loaded: the embedder "
                "pools hidden states and never runs a language-model head",
                unused=heads,
            )


def files_check(step: StepResult, folder: Path | None) -> None:
    """The checkpoint folder holds a config, processor, tokenizer and chat template file."""
    if folder is None:
        step.add("files", "skipped", "not a local folder and not in the Hugging Face cache")
        return
    present = {p.name for p in folder.iterdir()}
    lacking = [group for group, names in PROCESSOR_FILES.items() if not present & set(names)]
    if lacking:
        step.add("files", "fail", f"{folder} has no {', '.join(lacking)} file")
    else:
        step.add("files", "pass", f"{folder}: config, processor, tokenizer and chat template files present")


def processor_check(step: StepResult, processor: Any) -> None:
    """The tokenizer loaded and the chat template lays out a card conversation as the card does."""
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        step.add("tokenizer", "fail", f"{type(processor).__name__} has no tokenizer")
        return
    step.add("tokenizer", "pass", f"{type(tokenizer).__name__}, {len(tokenizer)} tokens")
    conversation = card_conversation("query: ", text="probe", image="i", video="v", audio="a")
    try:
        text = processor.apply_chat_template(conversation, add_generation_prompt=False, tokenize=False)
    except Exception as error:  # a template can raise anything jinja raises
        step.add("chat template", "fail", f"{type(error).__name__}: {error}")
        return
    text = text[0] if isinstance(text, list) else text
    lacking = [m for m in (*TEMPLATE_MARKERS, "query: probe") if m not in text]
    if lacking:
        step.add("chat template", "fail", f"the rendered conversation lacks {lacking}: {text!r}")
    else:
        step.add("chat template", "pass", "text, image, video and audio laid out with Qwen2.5-Omni tokens")


def checkpoint_folder(name: str, revision: str | None) -> Path | None:
    """The folder the checkpoint was read from: the path itself, or its snapshot in the hub cache."""
    if Path(name).is_dir():
        return Path(name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception:  # not cached (or an old cache layout): nothing to list
        return None


def loading_step(
    name: str,
    *,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
    embedder_kwargs: Mapping[str, Any],
) -> tuple[StepResult, OmniEmbedder | None]:
    """Load the embedder as users do and check the load; the embedder is ``None`` when it failed."""
    step = StepResult("loading")
    try:
        with capture_loading_info() as records:
            embedder = OmniEmbedder.from_pretrained(name, device=device, dtype=dtype, **embedder_kwargs)
    except ModelLoadError as error:  # its message already says what to do
        step.add("load", "fail", str(error))
        return step, None
    except Exception as error:  # anything else from_pretrained raises is what the report is for
        step.add("load", "fail", f"{type(error).__name__}: {error}")
        return step, None
    backend = embedder.backend
    config = read_config(os.fspath(name), embedder.revision)
    step.add(
        "config",
        "pass",
        f"model_type {config.get('model_type', '?')}, {embedder.dim}-d, revision {embedder.revision}",
        model_type=config.get("model_type"),
        dim=embedder.dim,
        revision=embedder.revision,
    )
    step.add("path", "pass", load_path(embedder))
    weights_check(step, records)
    files_check(step, checkpoint_folder(os.fspath(name), embedder.revision))
    raw_processor = getattr(getattr(backend, "processor", None), "processor", None)
    if raw_processor is not None:
        processor_check(step, raw_processor)
    return step, embedder
