"""Backend for Qwen2.5-Omni thinker checkpoints (Omni-Embed-Nemotron-3B)."""
