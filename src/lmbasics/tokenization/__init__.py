"""Tokenization: from Unicode text to token ids and back (chapters 2 and 3).

GPT-2's pre-tokenization and the file chunking that makes it parallel, byte-level BPE training, the
`Tokenizer` that applies the merges, and GPT-2's byte-to-character mapping for its file formats.
"""
