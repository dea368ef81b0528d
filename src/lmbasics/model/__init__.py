"""The model: a decoder-only Transformer LM built from scratch (chapters 4 and 5; ablations in chapter 9).

Model shapes and presets, the layers (Linear, Embedding, RMSNorm, feed-forward networks), RoPE and
attention, the LM itself, and the parameter, FLOP and memory accounting of chapter 5; `minimal` holds
the teaching versions chapter 4 shows first (same weights, same outputs).
"""
