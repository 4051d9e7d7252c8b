"""Configuration of the tiny llama-nemotron-embed-vl stand-in (copied by omni_rag.testing.nemotron_vl)."""

from transformers import PretrainedConfig


class LlamaNemotronVLConfig(PretrainedConfig):
    model_type = "llama_nemotron_vl"

    def __init__(
        self,
        llm_config=None,
        vision_config=None,
        tile_size=16,
        num_image_token=4,
        p_max_length=4096,
        q_max_length=512,
        max_input_tiles=2,
        use_thumbnail=True,
        query_prefix="query:",
        passage_prefix="passage:",
        pooling="avg",
        **kwargs,
    ):
        self.llm_config = dict(llm_config or {"hidden_size": 32, "vocab_size": 260})
        self.vision_config = dict(vision_config or {"hidden_size": 16, "num_channels": 3})
        self.tile_size = tile_size
        self.num_image_token = num_image_token
        self.p_max_length = p_max_length
        self.q_max_length = q_max_length
        self.max_input_tiles = max_input_tiles
        self.use_thumbnail = use_thumbnail
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.pooling = pooling
        super().__init__(**kwargs)
