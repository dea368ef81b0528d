"""lmbasics: the library behind the book "Language models from scratch".

The package follows the book's parts:

- `lmbasics.tokenization`: Unicode bytes to token ids (chapters 2 and 3);
- `lmbasics.model`: the Transformer LM and its resource accounting (chapters 4 and 5);
- `lmbasics.training`: loss, optimizers, data, checkpoints, the training loop and decoding (chapters 6 to 11);
- `lmbasics.book`: what only the chapters need (chapter 1's Unicode helpers, display, plotting, the
  book's corpora and tokenizers, notebook set-up, experiments and their log, recorded runs, probes,
  `show_source`).

The names exported here are the handout's API plus what the chapters use, so `from lmbasics import X`
works for every component the book builds; the notebooks import from this one surface.
"""

# --- the book's plumbing (book) ---
from lmbasics.book.autograd import saved_for_backward
from lmbasics.book.baselines import bits_per_byte, unigram_cross_entropy
from lmbasics.book.corpora import CORPORA, FULL_TRAIN_BYTES, corpus_path, read_documents, token_arrays
from lmbasics.book.display import token_view
from lmbasics.book.experiment_log import (
    LoggedExperiment,
    config_changes,
    distinct_runs,
    log_experiment,
    read_experiment_log,
    recorded_results,
    regenerate_chapters,
    run_identity,
)
from lmbasics.book.experiments import SEEDS, Run, SeedRange, last, margin, run_experiment, run_seeds, seed_range
from lmbasics.book.memory import TreeMemory, peak_tree_memory
from lmbasics.book.notebook import (
    PINNED_KERNELS,
    book_seed,
    fix_threads,
    kernels_pinned,
    seed_everything,
    seed_offset,
    setup_notebook,
)
from lmbasics.book.plotting import mark_baselines, plot_losses, plot_seed_bands, read_metrics
from lmbasics.book.probes import (
    LossHeatmap,
    activation_norms,
    loss_heatmap,
    mean_window_loss,
    token_losses,
    window_losses,
)
from lmbasics.book.protocol import Comparison, compare, detectable_effect, diverged
from lmbasics.book.records import heldout_scores, read_record, verify_record
from lmbasics.book.source import SourceView, show_source
from lmbasics.book.sweeps import Sweep, read_sweep, verify_sweep
from lmbasics.book.tokenizers import book_tokenizer, load_or_train_tokenizer, unseen_id_share
from lmbasics.book.unicode import describe_chars, encoded_sizes, undecodable_sequences, utf8_bits, utf8_layout

# --- model ---
from lmbasics.model.accounting import (
    ADAMW_FLOPS_PER_PARAMETER,
    GB,
    GiB,
    activation_count,
    adamw_memory,
    count_parameters,
    forward_flops,
    max_batch_size,
    muon_flops,
    training_step_flops,
    training_time_seconds,
)
from lmbasics.model.attention import (
    MultiHeadSelfAttention,
    RotaryPositionalEmbedding,
    causal_mask,
    scaled_dot_product_attention,
    softmax,
)
from lmbasics.model.config import PRESETS, ModelConfig
from lmbasics.model.layers import Embedding, Linear, ReLUSquaredFFN, RMSNorm, SiLUFFN, SwiGLU, silu
from lmbasics.model.lm import TransformerBlock, TransformerLM
from lmbasics.model.minimal import (
    MinimalEmbedding,
    MinimalLinear,
    MinimalMultiHeadSelfAttention,
    MinimalRMSNorm,
    MinimalRoPE,
    MinimalSwiGLU,
    MinimalTransformerBlock,
    MinimalTransformerLM,
    minimal_attention,
    minimal_attention_weights,
    minimal_silu,
    minimal_softmax,
)

# --- tokenization ---
from lmbasics.tokenization.bpe import bpe_merges, train_bpe
from lmbasics.tokenization.files import count_pretokens, encode_file
from lmbasics.tokenization.pretokenize import (
    GPT2_PATTERN,
    pretokenize,
    pretokenize_without_specials,
    special_token_regex,
)
from lmbasics.tokenization.reference import naive_encode, naive_merges, naive_train_bpe
from lmbasics.tokenization.tokenizer import Tokenizer

# --- training ---
from lmbasics.training.checkpoint import load_checkpoint, load_model, read_checkpoint, save_checkpoint
from lmbasics.training.config import TrainConfig, load_train_config
from lmbasics.training.data import get_batch, load_tokens
from lmbasics.training.generate import generate, next_token_distribution
from lmbasics.training.loss import cross_entropy, cross_entropy_and_z
from lmbasics.training.minimal import minimal_cross_entropy
from lmbasics.training.optim import (
    SGD,
    AdamW,
    Muon,
    clip_grad_norm,
    cosine_lr_schedule,
    newton_schulz,
    optimizer_from_config,
    wsd_lr_schedule,
)
from lmbasics.training.trainer import Trainer, train

__version__ = "0.1.0"
