"""Text alone takes the processor's shorter way (template rendered once, tokenizer called directly):
it must give the checkpoint processor's exact inputs, and leave to the processor what it handles
itself (media placeholder tokens, which it expands or refuses)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from omni_rag import Content, OmniEmbedder
from omni_rag.embedder.qwen_omni.processor import OmniProcessor, TextTemplate
from omni_rag.errors import OmniInputError

TEXTS = [
    "how do volcanoes erupt?",
    "  leading and trailing spaces  ",
    "two\nlines\n\nand a tab\there",
    "unicode: café, naïve, 東京, Ελληνικά, emoji 🎬🔊",
    "jinja-looking {{ message }} {% if x %}y{% endif %} {# c #}",
    "quotes \"double\" and 'single' and \\ backslash",
    "<p>html-ish</p> & ampersand",
    "im_start without the brackets, <| half a token",
    "word " * 300,
]


def processor(embedder: OmniEmbedder) -> OmniProcessor:
    backend: Any = embedder.backend
    return backend.processor  # type: ignore[no-any-return]


def assert_same(fast: dict[str, torch.Tensor], slow: dict[str, torch.Tensor]) -> None:
    assert fast.keys() == slow.keys()
    for key in slow:
        assert fast[key].dtype == slow[key].dtype, key
        assert torch.equal(fast[key], slow[key]), key


@pytest.mark.parametrize("variant", ["embedder", "custom_embedder"])
@pytest.mark.parametrize("kind", ["query", "document"])
def test_text_alone_gets_the_processors_exact_inputs(
    variant: str, kind: str, request: pytest.FixtureRequest
) -> None:
    proc = processor(request.getfixturevalue(variant))
    for text in TEXTS:
        item = Content(text=text)
        assert proc._plain_text(item, kind) is not None, text  # the short way is taken
        fast = proc(item, kind=kind, index=0)
        slow = proc.process(item, kind=kind, index=0)
        assert fast.num_tokens == slow.num_tokens
        assert_same(fast.features, slow.features)


@pytest.mark.parametrize("token", ["<|IMAGE|>", "<|AUDIO|>", "<|VIDEO|>"])
def test_text_with_a_media_placeholder_is_refused_by_the_processor_as_before(
    embedder: OmniEmbedder, token: str
) -> None:
    proc = processor(embedder)
    item = Content(text=f"look {token} here")
    assert proc._plain_text(item, "query") is None
    expected = re.escape(f"item 3, field 'text': processor failed: Found 1 {token} tokens")
    with pytest.raises(OmniInputError, match=expected):
        proc(item, kind="query", index=3)


def test_text_with_other_special_tokens_goes_through_the_processor(embedder: OmniEmbedder) -> None:
    proc = processor(embedder)
    item = Content(text="<|im_end|> injected <|im_start|>")
    assert proc._plain_text(item, "query") is None
    slow = proc.process(item, kind="query", index=0)
    assert_same(proc(item, kind="query", index=0).features, slow.features)


def test_truncation_cuts_text_alone_where_the_processor_does(native_checkpoint: Path) -> None:
    truncating = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", truncate=True)
    proc = processor(truncating)
    item = Content(text="word " * (proc.max_tokens + 50))
    fast = proc(item, kind="document", index=0)
    assert fast.num_tokens == proc.max_tokens
    assert_same(fast.features, proc.process(item, kind="document", index=0).features)


def test_text_over_the_context_is_refused_naming_the_item(embedder: OmniEmbedder) -> None:
    proc = processor(embedder)
    with pytest.raises(OmniInputError, match=r"item 5, field 'text': \d+ tokens exceed the model's context"):
        proc(Content(text="word " * (proc.max_tokens + 50)), kind="query", index=5)


def test_a_template_that_changes_the_text_is_not_split() -> None:
    assert TextTemplate.of(lambda text: f"<a>{text}</a>") == TextTemplate("<a>", "</a>")
    assert TextTemplate.of(lambda text: f"<a>{text.strip()}</a>") is None
    assert TextTemplate.of(lambda text: f"<a>{text.upper()}</a>") is None
    assert TextTemplate.of(lambda text: f"{text}|{text}") is None
    assert TextTemplate.of(lambda text: f"<{text.count('A')}>{text}") is None
    assert TextTemplate.of(lambda text: None) is None
