"""Blocks shared by model nodes (norms, rotary embeddings, attention with KV cache, MoE, sampling)."""
