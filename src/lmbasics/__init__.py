"""lmbasics: the library behind the book "Language models from scratch".

Each module is one topic of the CS336 assignment 1 handout; the names exported here are the
handout's API, so `from lmbasics import X` works for every component the chapters build.
"""

from lmbasics.config import PRESETS, ModelConfig
from lmbasics.display import token_view
from lmbasics.reproducibility import fix_threads, seed_everything, setup_notebook

# --- tokenization (bpe, tokenizer) ---
from lmbasics.bpe import train_bpe
from lmbasics.tokenizer import Tokenizer, book_tokenizer, encode_file, load_or_train_tokenizer

# --- model (layers, model) ---
from lmbasics.attention import (
    MultiHeadSelfAttention,
    RotaryPositionalEmbedding,
    causal_mask,
    scaled_dot_product_attention,
    softmax,
)
from lmbasics.layers import Embedding, Linear, RMSNorm, SiLUFFN, SwiGLU, silu
from lmbasics.model import TransformerBlock, TransformerLM

# --- training math (loss, optim, accounting) ---
from lmbasics.accounting import (
    activation_count,
    adamw_memory,
    count_parameters,
    forward_flops,
    max_batch_size,
    training_step_flops,
    training_time_seconds,
)
from lmbasics.loss import cross_entropy
from lmbasics.optim import SGD, AdamW, clip_grad_norm, cosine_lr_schedule

# --- training (data, checkpoint, generate, train) ---
from lmbasics.checkpoint import load_checkpoint, save_checkpoint
from lmbasics.data import get_batch, load_tokens
from lmbasics.generate import generate
from lmbasics.train_config import TrainConfig, load_train_config

__version__ = "0.1.0"
