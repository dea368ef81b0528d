"""Training config: TOML tables, overrides, and errors that name the bad key."""

import pytest

from lmbasics.training.config import TrainConfig, load_train_config

EXAMPLE = """
[model]
vocab_size = 500
context_length = 32
d_model = 64
num_layers = 2
num_heads = 4
d_ff = 176

[optimizer]
max_learning_rate = 3e-3
warmup_iters = 10

[data]
train = "artifacts/train.npy"

[run]
batch_size = 8
max_iters = 50
"""


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_tables_fill_the_dataclasses_and_defaults_remain(tmp_path):
    config = load_train_config(write(tmp_path, EXAMPLE))
    assert config.model.d_ff == 176 and config.model.rope_theta == 10_000.0
    assert config.optimizer.max_learning_rate == 3e-3 and config.optimizer.beta2 == 0.95
    assert config.data.train == "artifacts/train.npy"
    assert config.tokens_per_iter == 8 * 32


def test_overrides_parse_toml_values_and_revalidate(tmp_path):
    config = load_train_config(
        write(tmp_path, EXAMPLE), ["run.max_iters=200", "model.norm=post", "optimizer.max_grad_norm=0.5"]
    )
    assert config.run.max_iters == 200 and config.model.norm == "post" and config.optimizer.max_grad_norm == 0.5
    assert config.with_overrides(["model.rope_theta=none"]).model.rope_theta is None  # NoPE
    # "none" means None only where None is allowed; elsewhere it stays a string.
    assert config.with_overrides(["run.out_dir=none"]).run.out_dir == "none"


def test_ints_are_accepted_for_floats_but_not_bools_for_ints(tmp_path):
    config = load_train_config(write(tmp_path, EXAMPLE), ["optimizer.max_learning_rate=1"])
    assert isinstance(config.optimizer.max_learning_rate, float)
    with pytest.raises(ValueError, match=r"run.batch_size: expected <class 'int'>, got True"):
        config.with_overrides(["run.batch_size=true"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("[run]\nbatch_sise = 4\n", r"run: unknown key\(s\) \['batch_sise'\]"),
        ("[trainer]\nx = 1\n", r"unknown section\(s\) \['trainer'\]"),
        ('[run]\nmax_iters = "many"\n', r"run.max_iters: expected <class 'int'>, got 'many'"),
        ('[model]\nnorm = "layer"\n', r"model.norm: expected"),
        ("[model]\nd_model = 100\nnum_heads = 3\n", "must be divisible by num_heads"),
        ("[run\n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_train_config(write(tmp_path, text))


def test_bad_override_syntax_and_missing_file(tmp_path):
    config = TrainConfig()
    with pytest.raises(ValueError, match="expected section.key=value"):
        config.with_overrides(["max_iters=3"])
    with pytest.raises(ValueError, match="unknown section 'trainr'"):
        config.with_overrides(["trainr.max_iters=3"])
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_train_config(tmp_path / "absent.toml")


def test_a_removed_key_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('[data]\ntrain = "a.npy"\ntokenizer = "artifacts/tokenizers/x"\n')
    with pytest.raises(ValueError, match=r"data\.tokenizer was removed \(nothing ever read it; delete the line\)"):
        load_train_config(path)
