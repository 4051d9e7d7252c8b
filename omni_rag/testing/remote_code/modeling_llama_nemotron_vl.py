"""Tiny stand-in for llama-nemotron-embed-vl-1b-v2's remote code (copied by omni_rag.testing.nemotron_vl).

Same public surface as the real ``LlamaNemotronVLModel``: ``model.processor`` with ``p_max_length``,
``q_max_length``, ``max_input_tiles``, ``use_thumbnail`` and ``tokenizer``; ``encode_queries(list[str])``;
``encode_documents(images=None, texts=None)``; both return the avg-pooled last hidden state, not normalised.
"""

import math

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import BaseModelOutput

from .configuration_llama_nemotron_vl import LlamaNemotronVLConfig

IMG_CONTEXT = "<IMG_CONTEXT>"
SPECIAL = ("<pad>", IMG_CONTEXT, "<img>", "</img>")


def build_tokenizer():
    """Byte-level BPE with no merges: one token per UTF-8 byte, plus the image tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(alphabet)}
    for token in SPECIAL:
        vocab[token] = len(vocab)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", padding_side="right")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL[1:])})
    return tokenizer


def _grid(width, height, max_tiles):
    """The (cols, rows) grid with at most ``max_tiles`` tiles closest to the image's aspect ratio."""
    aspect = width / height
    grids = [(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1) if c * r <= max_tiles]
    return min(grids, key=lambda g: (abs(math.log(g[0] / g[1]) - math.log(aspect)), -g[0] * g[1]))


class LlamaNemotronVLProcessor:
    """Turns queries and documents into model inputs; the card's settings are plain attributes."""

    def __init__(self, config):
        self.tokenizer = build_tokenizer()
        self.tile_size = config.tile_size
        self.num_image_token = config.num_image_token
        self.p_max_length = config.p_max_length
        self.q_max_length = config.q_max_length
        self.max_input_tiles = config.max_input_tiles
        self.use_thumbnail = config.use_thumbnail
        self.query_prefix = config.query_prefix
        self.passage_prefix = config.passage_prefix
        self.img_context_token_id = self.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)

    def _ids(self, text):
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _tiles(self, image):
        if not isinstance(image, Image.Image):
            raise ValueError(f"Invalid image: {type(image).__name__}")
        size = self.tile_size
        cols, rows = _grid(image.width, image.height, self.max_input_tiles)
        resized = image.convert("RGB").resize((cols * size, rows * size), Image.Resampling.BICUBIC)
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        boxes = [(c * size, r * size, (c + 1) * size, (r + 1) * size) for c, r in cells]
        tiles = [resized.crop(box) for box in boxes]
        if self.use_thumbnail and len(tiles) != 1:
            tiles.append(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
        arrays = [np.asarray(t, dtype=np.float32) / 255.0 for t in tiles]
        return (torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) - 0.5) / 0.5

    def _batch(self, sequences, pixel_values):
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], dtype=torch.long)
        pixels = torch.cat(pixel_values) if pixel_values else None
        return {"input_ids": input_ids, "attention_mask": mask, "pixel_values": pixels}

    def process_queries(self, queries):
        sequences = [self._ids(f"{self.query_prefix} {q}")[: self.q_max_length] for q in queries]
        return self._batch(sequences, [])

    def process_documents(self, documents):
        sequences, pixel_values = [], []
        for doc in documents:
            image_ids = []
            if doc["image"] != "":
                tiles = self._tiles(doc["image"])
                pixel_values.append(tiles)
                context = IMG_CONTEXT * (self.num_image_token * tiles.shape[0])
                image_ids = self._ids(f"<img>{context}</img>")
            text_ids = self._ids(f"{self.passage_prefix} {doc['text']}")
            budget = max(self.p_max_length - len(image_ids), 0)
            sequences.append(image_ids + text_ids[:budget])
        return self._batch(sequences, pixel_values)


class LlamaNemotronVLModel(PreTrainedModel):
    config_class = LlamaNemotronVLConfig
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config):
        super().__init__(config)
        hidden = config.llm_config["hidden_size"]
        vision = config.vision_config["hidden_size"]
        side = round(math.sqrt(config.num_image_token))
        self.embed_tokens = nn.Embedding(config.llm_config["vocab_size"], hidden)
        patch = config.tile_size // side
        self.vision_model = nn.Conv2d(3, vision, kernel_size=patch, stride=patch)
        self.mlp1 = nn.Sequential(nn.Linear(vision, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        wide = 2 * hidden
        self.token_mlp = nn.Sequential(nn.Linear(hidden, wide), nn.GELU(), nn.Linear(wide, hidden))
        self.context = nn.Linear(hidden, hidden)
        self.num_image_token = config.num_image_token
        self.processor = LlamaNemotronVLProcessor(config)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(module.weight, std=0.3)
            if module.bias is not None:
                nn.init.normal_(module.bias, std=0.1)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=1.0)

    def extract_feature(self, pixel_values):
        features = self.vision_model(pixel_values.to(self.dtype)).flatten(2).transpose(1, 2)
        return self.mlp1(features)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        pixel_values=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        embeds = self.embed_tokens(input_ids)
        if pixel_values is not None:
            vit = self.extract_feature(pixel_values).reshape(-1, embeds.shape[-1])
            selected = input_ids == self.processor.img_context_token_id
            embeds = embeds.clone()
            embeds[selected] = vit.to(embeds.dtype)
        mask = attention_mask.unsqueeze(-1).to(embeds.dtype)
        hidden = embeds + self.token_mlp(embeds)
        # Bidirectional: every token sees the (padding-masked) mean of the whole sequence.
        mean = (hidden * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        last = hidden + torch.tanh(self.context(mean))
        return BaseModelOutput(last_hidden_state=last, hidden_states=(embeds, last))

    def _embed_batch(self, inputs):
        inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        outputs = self.forward(**inputs, output_hidden_states=True, return_dict=True)
        hidden = outputs.hidden_states[-1]
        mask = inputs["attention_mask"]
        hidden = hidden.masked_fill(~mask[..., None].bool(), 0.0)
        return hidden.sum(dim=1) / mask.sum(dim=1)[..., None]

    def encode_queries(self, queries, **kwargs):
        return self._embed_batch(self.processor.process_queries(queries))

    def encode_documents(self, images=None, texts=None, **kwargs):
        if images and texts:
            examples = [{"image": image, "text": text} for image, text in zip(images, texts, strict=True)]
        elif images:
            examples = [{"image": image, "text": ""} for image in images]
        elif texts:
            examples = [{"image": "", "text": text} for text in texts]
        else:
            raise ValueError("At least docs_images or docs_texts need to be provided")
        return self._embed_batch(self.processor.process_documents(examples))
