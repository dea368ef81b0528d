"""lmbasics: the library behind the book "Language models from scratch".

Each module is one topic of the CS336 assignment 1 handout; the names exported here are the
handout's API, so `from lmbasics import X` works for every component the chapters build.
"""

from lmbasics.config import PRESETS, ModelConfig
from lmbasics.display import token_view
from lmbasics.reproducibility import fix_threads, seed_everything, setup_notebook

# --- tokenization (bpe, tokenizer) ---

# --- model (layers, model) ---

# --- training math (loss, optim, accounting) ---

__version__ = "0.1.0"
