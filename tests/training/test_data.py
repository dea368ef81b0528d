"""get_batch and load_tokens: windows, shapes, memory-mapping and clear errors on bad data."""

import numpy as np
import pytest
import torch

from lmbasics.training.data import check_token_ids, get_batch, load_tokens


def test_batches_are_consecutive_windows_with_shifted_targets():
    x = np.arange(100, dtype=np.uint16)
    inputs, targets = get_batch(x, batch_size=8, context_length=16, device="cpu", rng=np.random.default_rng(0))
    assert inputs.shape == targets.shape == (8, 16)
    assert inputs.dtype == targets.dtype == torch.int64
    # With x = arange, each row is start, start+1, ...; targets are the next ids.
    assert torch.equal(targets, inputs + 1)
    assert torch.equal(inputs[:, 1:] - inputs[:, :-1], torch.ones(8, 15, dtype=torch.int64))
    assert int(inputs.min()) >= 0 and int(targets.max()) <= 99


def test_every_start_position_is_reachable_and_none_beyond():
    x = np.arange(12, dtype=np.int64)
    inputs, _ = get_batch(x, batch_size=5000, context_length=4, device="cpu", rng=np.random.default_rng(1))
    starts = set(inputs[:, 0].tolist())
    assert starts == set(range(0, 12 - 4))  # the last window is x[7:12]


def test_same_generator_state_gives_same_batches():
    x = np.arange(1000, dtype=np.uint16)
    a = get_batch(x, 4, 8, "cpu", rng=np.random.default_rng(7))[0]
    b = get_batch(x, 4, 8, "cpu", rng=np.random.default_rng(7))[0]
    assert torch.equal(a, b)


def test_get_batch_on_a_memmapped_npy(tmp_path):
    path = tmp_path / "tokens.npy"
    np.save(path, np.arange(5000, dtype=np.uint16))
    tokens = load_tokens(path, vocab_size=5000)
    assert isinstance(tokens, np.memmap)
    inputs, targets = get_batch(tokens, 3, 32, "cpu", rng=np.random.default_rng(0))
    assert torch.equal(targets, inputs + 1)


def test_dataset_shorter_than_context_is_an_error():
    with pytest.raises(ValueError, match="fewer than context_length"):
        get_batch(np.arange(10), batch_size=2, context_length=10, device="cpu")


def test_token_ids_outside_the_vocabulary_are_reported_with_position(tmp_path):
    path = tmp_path / "tokens.npy"
    ids = np.zeros(100, dtype=np.uint16)
    ids[42] = 300
    np.save(path, ids)
    with pytest.raises(ValueError, match="token id 300 at position 42 is outside the vocabulary"):
        load_tokens(path, vocab_size=256)
    check_token_ids(ids, vocab_size=301)  # no error once the vocabulary is large enough


def test_missing_and_malformed_token_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="token file not found"):
        load_tokens(tmp_path / "absent.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_tokens(tmp_path / "text.npy")
    np.save(tmp_path / "floats.npy", np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="1-D integer array"):
        load_tokens(tmp_path / "floats.npy")
