"""Chapter 11's training switches: the z-loss and its hand-written gradient, the warmup-stable-decay
schedule, Muon's Newton-Schulz orthogonalisation and updates, the trainer wiring, and TensorBoard logs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import VOCAB, tiny_config  # the same learnable toy run

from lmbasics import TransformerLM
from lmbasics.model.config import ModelConfig
from lmbasics.training.config import OptimizerConfig, TrainConfig
from lmbasics.training.loss import cross_entropy, cross_entropy_and_z
from lmbasics.training.optim import (
    AdamW,
    Muon,
    cosine_lr_schedule,
    muon_param_groups,
    newton_schulz,
    optimizer_from_config,
    wsd_lr_schedule,
)
from lmbasics.training.trainer import TENSORBOARD_DIR, Trainer, train

# --- z-loss ---


def _reference_z(logits: torch.Tensor, targets: torch.Tensor, coefficient: float) -> torch.Tensor:
    """The formula, for autograd: mean CE + coefficient * mean((log Z)^2) with torch's built-ins."""
    log_z = torch.logsumexp(logits, dim=-1)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return ce + coefficient * log_z.square().mean()


@pytest.mark.parametrize("shift", [0.0, 30.0])  # shifted logits: log Z far from 0, where the z-loss matters
def test_z_loss_value_and_gradient_match_autograd_of_the_formula(shift):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 11, generator=g, dtype=torch.float64) * 2 + shift).requires_grad_()
    targets = torch.randint(0, 11, (3, 5), generator=g)
    ce, z = cross_entropy_and_z(logits, targets)
    torch.testing.assert_close(ce, cross_entropy(logits, targets))
    torch.testing.assert_close(z, torch.logsumexp(logits, -1).square().mean())
    (ce + 0.1 * z).backward()
    reference_logits = logits.detach().clone().requires_grad_()
    _reference_z(reference_logits, targets, 0.1).backward()
    torch.testing.assert_close(logits.grad, reference_logits.grad)
    # The z term's own gradient is not negligible here: without it the gradient would differ.
    plain = logits.detach().clone().requires_grad_()
    cross_entropy(plain, targets).backward()
    if shift:
        assert (plain.grad - logits.grad).abs().max() > 1e-3


def test_z_loss_gradcheck():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 6, (4,), generator=g)
    assert torch.autograd.gradcheck(lambda x: cross_entropy_and_z(x, targets), (logits,))


def test_z_loss_rejects_mismatched_targets():
    with pytest.raises(ValueError, match="cross_entropy_and_z: targets shape"):
        cross_entropy_and_z(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


# --- warmup-stable-decay ---


def test_wsd_schedule_warms_up_holds_then_decays_linearly():
    lrs = [wsd_lr_schedule(t, 1.0, 0.1, 10, 100, 20) for t in range(110)]
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5)
    assert all(lr == 1.0 for lr in lrs[10:81])  # stable at the peak until step 80
    assert lrs[90] == pytest.approx(0.55) and lrs[100] == pytest.approx(0.1) and lrs[109] == 0.1
    assert all(a >= b for a, b in zip(lrs[80:], lrs[81:], strict=False))
    # Against the cosine with the same end points: WSD spends more of the run at high rates.
    cosine = [cosine_lr_schedule(t, 1.0, 0.1, 10, 100) for t in range(100)]
    assert sum(lrs[:100]) > sum(cosine) + 10
    assert lrs[50] == 1.0 > cosine[50]


@pytest.mark.parametrize(
    "args, message",
    [((0, 1.0, 0.1, 10, 20, 20), "total_iters"), ((0, 1.0, 0.1, 1, 20, 0), "decay_iters"), ((-1, 1, 0, 1, 9, 2), "it")],
)
def test_wsd_schedule_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        wsd_lr_schedule(*args)


# --- Muon ---


def _matrix_with_singular_values(singular: torch.Tensor, rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """U diag(singular) Vᵀ with random orthonormal U (rows, k) and V (cols, k), k = len(singular)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, len(singular), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, len(singular), generator=g, dtype=torch.float64))
    return (u * singular) @ v.T


@pytest.mark.parametrize("rows, cols", [(32, 32), (16, 48), (48, 16)])
def test_newton_schulz_output_is_close_to_orthogonal(rows, cols):
    k = min(rows, cols)
    singular = torch.logspace(-1, 1, k, dtype=torch.float64)  # condition number 100
    g = _matrix_with_singular_values(singular, rows, cols).float()
    x = newton_schulz(g)
    assert x.shape == g.shape
    got = torch.linalg.svdvals(x)
    # Five quintic steps lift singular values spread over two decades into the band around 1.
    assert got.min() > 0.6 and got.max() < 1.25, got
    # And the singular vectors are g's: x is close to U Vᵀ.
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    assert torch.nn.functional.cosine_similarity(x.flatten(), (u @ vh).flatten(), dim=0) > 0.95


def test_newton_schulz_needs_more_steps_for_tinier_singular_values():
    singular = torch.logspace(-1.5, 1.5, 24, dtype=torch.float64)  # condition number 1000
    g = _matrix_with_singular_values(singular, 24, 24).float()
    assert torch.linalg.svdvals(newton_schulz(g, steps=5)).min() < 0.5  # the smallest are not there yet
    assert torch.linalg.svdvals(newton_schulz(g, steps=10)).min() > 0.6


def test_newton_schulz_rejects_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz(torch.zeros(3))


def test_muon_update_has_flat_singular_values_and_adamw_handles_the_rest():
    torch.manual_seed(0)
    matrix, vector = torch.nn.Parameter(torch.randn(16, 24)), torch.nn.Parameter(torch.randn(24))
    opt = Muon([{"params": [matrix], "muon": True}, {"params": [vector], "muon": False, "lr": 1e-2}], lr=0.1)
    reference_vector = torch.nn.Parameter(vector.detach().clone())
    reference = AdamW([reference_vector], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
    before = matrix.detach().clone()
    matrix.grad = torch.randn(16, 24) * torch.logspace(-3, 0, 24)
    vector.grad = reference_vector.grad = torch.randn(24)
    opt.step()
    reference.step()
    step = (before - matrix.detach()) / 0.1
    singular = torch.linalg.svdvals(step)
    assert singular.min() > 0.6 and singular.max() < 1.25
    torch.testing.assert_close(vector, reference_vector)  # non-Muon groups are exactly AdamW


def test_muon_rejects_non_matrix_parameters():
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [torch.nn.Parameter(torch.zeros(3))], "muon": True}])


def test_muon_trains_a_toy_regression_faster_than_it_starts():
    # Learn a random linear map W* from (x, W* x) pairs with a two-layer linear model.
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 8, generator=g)
    w1, w2 = (torch.nn.Parameter(0.1 * torch.randn(8, 8, generator=g)) for _ in range(2))
    opt = Muon([{"params": [w1, w2], "muon": True}], lr=0.02)
    losses = []
    for _ in range(300):
        x = torch.randn(32, 8, generator=g)
        loss = ((x @ w1.T @ w2.T - x @ target.T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_muon_param_groups_split_a_transformer():
    config = ModelConfig(vocab_size=40, context_length=8, d_model=16, num_layers=2, num_heads=2, d_ff=32)
    model = TransformerLM.from_config(config.with_changes(tie_embeddings=True))
    hidden, other = muon_param_groups(model, OptimizerConfig(optimizer="muon"))
    assert hidden["muon"] and not other["muon"]
    assert len(hidden["params"]) == 2 * (4 + 3)  # q, k, v, o and SwiGLU's w1, w2, w3 per layer
    assert all(p.dim() == 2 for p in hidden["params"])
    assert any(p is model.token_embeddings.weight for p in other["params"])
    assert sum(p.numel() for g in (hidden, other) for p in g["params"]) == sum(p.numel() for p in model.parameters())
    assert isinstance(optimizer_from_config(model, OptimizerConfig()), AdamW)
    assert isinstance(optimizer_from_config(model, OptimizerConfig(optimizer="muon")), Muon)


# --- configs and the trainer ---


def test_old_train_config_dicts_without_the_new_keys_still_load(tmp_path):
    values = tiny_config(tmp_path).to_dict()
    for key in ("schedule", "decay_iters", "z_loss", "optimizer", "muon_learning_rate", "muon_momentum"):
        del values["optimizer"][key]
    del values["run"]["tensorboard"]
    for key in ("tie_embeddings", "qk_norm", "logit_softcap"):
        del values["model"][key]
    assert TrainConfig.from_dict(values) == tiny_config(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [({"schedule": "linear"}, "schedule"), ({"optimizer": "sgd"}, "optimizer"), ({"z_loss": -1.0}, "z_loss")],
)
def test_bad_optimizer_switches_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        OptimizerConfig(**change)


def test_trainer_uses_the_wsd_schedule_and_muon_rates(tmp_path):
    config = tiny_config(tmp_path).with_overrides(
        [
            "optimizer.schedule=wsd",
            "optimizer.decay_iters=10",
            "optimizer.optimizer=muon",
            "optimizer.muon_learning_rate=0.05",
        ]  # fmt: skip
    )
    trainer = Trainer(config, progress=False)
    assert [trainer.learning_rate(t) for t in (0, 5, 30, 35, 40)] == pytest.approx([0, 1e-2, 1e-2, 5.5e-3, 1e-3])
    trainer.train_step(30)
    lrs = {group["muon"]: group["lr"] for group in trainer.optimizer.param_groups}
    assert lrs == pytest.approx({True: 0.05, False: 1e-2})
    trainer.train_step(35)
    lrs = {group["muon"]: group["lr"] for group in trainer.optimizer.param_groups}
    assert lrs == pytest.approx({True: 0.05 * 0.55, False: 5.5e-3})
    trainer.close()


@pytest.mark.parametrize(
    "overrides",
    [["optimizer.optimizer=muon"], ["optimizer.z_loss=1e-3", "model.qk_norm=true"],
     ["model.tie_embeddings=true", "model.ffn=relu2", "optimizer.schedule=wsd", "model.logit_softcap=30.0"]],
)  # fmt: skip
def test_every_switch_trains(tmp_path, overrides):
    result = train(tiny_config(tmp_path, max_iters=60).with_overrides(overrides), progress=False)
    assert result.final_val_loss < 0.6 * np.log(VOCAB)


def test_z_loss_in_the_trainer_changes_the_updates_but_logs_the_cross_entropy(tmp_path):
    no_warmup = ["optimizer.warmup_iters=0"]  # so that step 0 already updates the weights
    plain_config = tiny_config(tmp_path, out_dir=str(tmp_path / "plain")).with_overrides(no_warmup)
    z_config = tiny_config(tmp_path, out_dir=str(tmp_path / "z")).with_overrides([*no_warmup, "optimizer.z_loss=0.5"])
    plain, z = Trainer(plain_config, progress=False), Trainer(z_config, progress=False)
    # Same weights and batch at step 0: the reported loss is the cross-entropy alone in both runs ...
    assert torch.equal(plain.train_step(0)[0], z.train_step(0)[0])
    # ... but the z-loss term changed the gradient, so the weights (and the next losses) differ.
    assert not torch.equal(plain.model.lm_head.weight, z.model.lm_head.weight)
    assert not torch.equal(plain.train_step(1)[0], z.train_step(1)[0])
    plain.close()
    z.close()


# --- TensorBoard ---


def test_tensorboard_events_hold_the_same_losses_as_metrics_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(tiny_config(tmp_path, tensorboard=True), progress=False)
    events = EventAccumulator(str(result.out_dir / TENSORBOARD_DIR))
    events.Reload()
    log = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    for key in ("train_loss", "val_loss"):
        expected = [(r["step"], r[key]) for r in log if r.get(key) is not None]
        got = [(e.step, e.value) for e in events.Scalars(f"loss/{key}")]
        assert [s for s, _ in got] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-6)  # stored as float32
    assert "train/lr" in events.Tags()["scalars"]


def test_tensorboard_is_off_by_default_and_on_with_the_flag(tmp_path):
    from lmbasics.cli import main

    result = train(tiny_config(tmp_path, max_iters=10), progress=False)
    assert not (Path(result.out_dir) / TENSORBOARD_DIR).exists()
    toml = tmp_path / "c.toml"
    lines = []
    for section, values in tiny_config(tmp_path, max_iters=10, out_dir=str(tmp_path / "flag")).to_dict().items():
        lines += [f"[{section}]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
    toml.write_text("\n".join(lines) + "\n")
    assert main(["train", "--config", str(toml), "--tensorboard", "--no-progress"]) == 0
    assert any((tmp_path / "flag" / TENSORBOARD_DIR).iterdir())
