"""Every shipped config parses, and the handout's full-scale runs have the handout's shapes and budget."""

from pathlib import Path

import pytest

from lmbasics.training.config import load_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses(path):
    config = load_train_config(path)
    assert config.run.max_iters > 0


@pytest.mark.parametrize("name, vocab", [("tinystories_17m", 10_000), ("owt_17m", 32_000)])
def test_full_scale_runs_follow_the_handout(name, vocab):
    config = load_train_config(Path(CONFIGS[0]).parent / f"{name}.toml")
    m = config.model
    assert (m.vocab_size, m.context_length, m.d_model, m.num_layers, m.num_heads, m.d_ff, m.rope_theta) == (
        vocab,
        256,
        512,
        4,
        16,
        1344,
        10_000.0,
    )
    assert config.run.batch_size * config.run.max_iters * m.context_length == 327_680_000
