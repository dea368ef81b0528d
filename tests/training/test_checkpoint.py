"""Checkpoints: round trip, RNG states, damaged files, and a writer killed mid-write."""

import io
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from lmbasics.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint


class Tiny(torch.nn.Module):
    def __init__(self, size: int = 8):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(size, size))

    def forward(self, x):
        return x @ self.weight


def trained(steps: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    model = Tiny()
    # A built-in optimizer is a fine stand-in here: checkpoints treat any Optimizer alike.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(4, 8)).square().sum().backward()
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("to_path", [True, False], ids=["path", "file-object"])
def test_round_trip_restores_model_optimizer_and_iteration(tmp_path, to_path):
    model, optimizer = trained()
    target = tmp_path / "ckpt.pt" if to_path else io.BytesIO()
    save_checkpoint(model, optimizer, 123, target)
    if not to_path:
        target.seek(0)
    fresh_model, _ = trained(steps=0, seed=1)
    fresh_opt = torch.optim.AdamW(fresh_model.parameters(), lr=1e-2)
    assert load_checkpoint(target, fresh_model, fresh_opt) == 123
    assert torch.equal(fresh_model.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_rng_states_are_restored(tmp_path):
    model, optimizer = trained()
    torch.manual_seed(5)
    np.random.seed(5)
    save_checkpoint(model, optimizer, 1, tmp_path / "c.pt")
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    load_checkpoint(tmp_path / "c.pt", model, optimizer)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])


def test_extra_state_travels_with_the_checkpoint(tmp_path):
    model, optimizer = trained()
    sampler = np.random.default_rng(3)
    save_checkpoint(model, optimizer, 7, tmp_path / "c.pt", extra={"sampler": sampler.bit_generator.state})
    restored = np.random.default_rng()
    restored.bit_generator.state = read_checkpoint(tmp_path / "c.pt")["extra"]["sampler"]
    assert restored.integers(0, 1 << 30) == sampler.integers(0, 1 << 30)


def test_missing_truncated_and_foreign_files_give_clear_errors(tmp_path):
    model, optimizer = trained()
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt", model)
    save_checkpoint(model, optimizer, 1, tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.pt", model)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not an lmbasics checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", model)


WRITER = textwrap.dedent(
    """
    import sys, torch
    from lmbasics.training.checkpoint import save_checkpoint
    model = torch.nn.Linear(2048, 2048)  # ~16 MB per checkpoint, so writes take a while
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    print("ready", flush=True)
    step = 1
    while True:
        save_checkpoint(model, optimizer, step, sys.argv[1])
        step += 1
    """
)


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    model, optimizer = trained()
    save_checkpoint(model, optimizer, 0, path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        for delay in (0.05, 0.13, 0.21):  # kill at different points of successive writes
            time.sleep(delay)
            payload = read_checkpoint(path)  # whatever is at the path is always whole
            assert payload["iteration"] >= 0
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    payload = read_checkpoint(path)
    assert isinstance(payload["iteration"], int)


def test_load_model_rebuilds_the_model_in_eval_mode_without_touching_rng(tmp_path):
    from lmbasics import AdamW, ModelConfig, TransformerLM, load_model

    config = ModelConfig(vocab_size=32, context_length=8, d_model=16, num_layers=1, num_heads=2, d_ff=32)
    torch.manual_seed(0)
    model = TransformerLM.from_config(config)
    save_checkpoint(model, AdamW(model.parameters()), 5, tmp_path / "checkpoint.pt")
    state = torch.random.get_rng_state()
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not loaded.training and loaded.config == model.config
    ids = torch.randint(0, 32, (2, 8))
    assert torch.equal(loaded(ids), model.eval()(ids))

    save_checkpoint(Tiny(), torch.optim.SGD(Tiny().parameters(), lr=0.1), 1, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="no model config"):
        load_model(tmp_path / "bare.pt")
