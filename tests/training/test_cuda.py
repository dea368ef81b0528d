"""What only a GPU can show: bf16 autocast and torch.compile on CUDA. Skipped without one (CI has none).

These guard a real failure seen on an H100 (torch 2.11): in-place `exp_`/`masked_fill_` inside
attention gave infinite gradients once the model was compiled and run under bf16 autocast, while the
eager model was fine. They run wherever `pytest` finds a CUDA device.
"""

import pytest
import torch
from test_trainer import VOCAB, metrics, tiny_config

from lmbasics import TransformerLM, cross_entropy
from lmbasics.model.config import ModelConfig
from lmbasics.training.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _loss_and_grad_norm(model: torch.nn.Module, step_model, tokens: torch.Tensor) -> tuple[float, float]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = cross_entropy(step_model(tokens[:, :-1]), tokens[:, 1:])
    loss.backward()
    grad_norm = torch.stack([p.grad.float().norm() for p in model.parameters()]).norm()
    return float(loss.detach()), float(grad_norm)


def test_compiled_bf16_gradients_match_eager():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=1000, context_length=128, d_model=256, num_layers=2, num_heads=8, d_ff=704)
    model = TransformerLM.from_config(config, device="cuda")
    tokens = torch.randint(0, config.vocab_size, (8, config.context_length + 1), device="cuda")
    eager_loss, eager_norm = _loss_and_grad_norm(model, model, tokens)
    compiled_loss, compiled_norm = _loss_and_grad_norm(model, torch.compile(model), tokens)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-2)
    assert compiled_norm == pytest.approx(eager_norm, rel=5e-2)


@pytest.mark.parametrize("compile_model", [False, True])
def test_mixed_precision_training_learns_on_cuda(tmp_path, compile_model):
    config = tiny_config(tmp_path, max_iters=60, device="cuda", mixed_precision=True, compile=compile_model)
    result = train(config, progress=False)
    log = metrics(result.out_dir)
    assert all(torch.isfinite(torch.tensor([r["train_loss"], r["grad_norm"]])).all() for r in log)
    assert result.final_val_loss < 0.6 * torch.log(torch.tensor(float(VOCAB))).item()
