"""activation_norms, token_losses, mean_window_loss, window_losses and loss_heatmap: measurements that agree
with a direct computation."""

import numpy as np
import pytest
import torch

from lmbasics import (
    TransformerLM,
    activation_norms,
    cross_entropy,
    loss_heatmap,
    mean_window_loss,
    token_losses,
    window_losses,
)


def _model(norm: str = "pre") -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(vocab_size=50, context_length=8, d_model=16, num_layers=2, num_heads=2, d_ff=32,
                         rope_theta=10000.0, norm=norm).eval()  # fmt: skip


def test_activation_norms_follow_the_forward_pass_and_leave_no_hooks():
    model = _model()
    ids = torch.randint(0, 50, (3, 8), generator=torch.Generator().manual_seed(1))
    norms = activation_norms(model, ids)
    assert list(norms) == ["embedding", "block 1", "block 2", "LM head input", "logits"]
    with torch.no_grad():
        x = model.token_embeddings(ids)
    assert norms["embedding"] == pytest.approx(float(x.pow(2).mean(-1).sqrt().mean()))
    for i, layer in enumerate(model.layers):
        with torch.no_grad():
            x = layer(x, torch.arange(8))
        assert norms[f"block {i + 1}"] == pytest.approx(float(x.pow(2).mean(-1).sqrt().mean()))
    logits = model(ids).detach()
    assert norms["logits"] == pytest.approx(float(logits.pow(2).mean(-1).sqrt().mean()), rel=1e-5)
    assert all(not m._forward_hooks for m in model.modules())


def test_post_norm_blocks_output_unit_rms_and_pre_norm_head_input_is_normalised():
    ids = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(2))
    post = activation_norms(_model("post"), ids)
    assert post["block 1"] == pytest.approx(1.0, abs=1e-3)  # RMSNorm with its initial gain of 1
    pre = activation_norms(_model("pre"), ids)
    assert pre["LM head input"] == pytest.approx(1.0, abs=1e-3)
    assert pre["LM head input"] != pytest.approx(pre["block 2"], abs=1e-3)


def test_activation_norms_reject_unbatched_input():
    with pytest.raises(ValueError, match="batch, seq"):
        activation_norms(_model(), torch.zeros(8, dtype=torch.long))


def test_token_losses_average_to_the_cross_entropy():
    model = _model()
    ids = [3, 14, 15, 9, 26, 5, 35, 8, 9]  # context_length + 1 tokens
    losses = token_losses(model, ids)
    assert losses.shape == (8,) and (losses > 0).all()
    inputs, targets = torch.tensor([ids[:-1]]), torch.tensor([ids[1:]])
    assert losses.mean() == pytest.approx(float(cross_entropy(model(inputs), targets).detach()), rel=1e-5)
    # Causal: the first losses do not depend on later tokens.
    assert token_losses(model, ids[:4]) == pytest.approx(losses[:3], rel=1e-5)


@pytest.mark.parametrize("n", [1, 10])
def test_token_losses_reject_windows_that_do_not_fit(n):
    with pytest.raises(ValueError, match="context_length"):
        token_losses(_model(), list(range(n)))


def test_loss_heatmap_colours_by_loss_and_reports_the_hardest_tokens():
    view = loss_heatmap(["The", " cat", "<&>"], [1.0, 9.0, 20.0], vmax=10.0, title="demo")
    html = view._repr_html_()
    assert html.count("<span") == 3 and "&lt;&amp;&gt;" in html
    assert "rgb(255,230,230)" in html and "rgb(255,0,0)" in html  # 1/10 of the way to red; clipped at vmax
    assert view.hardest(2) == [("<&>", 20.0), (" cat", 9.0)]
    assert repr(view).startswith("demo: 3 tokens, mean loss 10.00 nats; highest: '<&>' 20.0")


def test_loss_heatmap_rejects_mismatched_lengths_and_bad_scale():
    with pytest.raises(ValueError, match="2 pieces but 1 losses"):
        loss_heatmap(["a", "b"], np.array([1.0]))
    with pytest.raises(ValueError, match="vmax"):
        loss_heatmap(["a"], [1.0], vmax=0)


def test_mean_window_loss_is_the_mean_over_whole_windows_and_ignores_the_tail():
    model = _model()
    ids = np.random.default_rng(3).integers(0, 50, size=3 * 8 + 1 + 5)  # 3 windows of 8 predictions, then a tail
    per_window = [token_losses(model, ids[w * 8 : w * 8 + 9].tolist()) for w in range(3)]
    expected = float(np.mean(np.concatenate(per_window)))
    for batch_size in (1, 2, 64):  # 2: batches of 2 and 1 windows
        assert mean_window_loss(model, ids, batch_size=batch_size) == pytest.approx(expected, rel=1e-5)
    assert mean_window_loss(model, ids) == mean_window_loss(model, ids[: 3 * 8 + 1])  # the tail is left out


def test_mean_window_loss_needs_one_full_window():
    with pytest.raises(ValueError, match="at least context_length"):
        mean_window_loss(_model(), [1] * 8)


def test_window_losses_keep_each_prediction_of_each_window_apart():
    model = _model()
    ids = np.random.default_rng(4).integers(0, 50, size=3 * 8 + 1 + 5)
    expected = np.stack([token_losses(model, ids[w * 8 : w * 8 + 9].tolist()) for w in range(3)])  # (3, 8)
    for batch_size in (1, 2, 16):
        np.testing.assert_allclose(window_losses(model, ids, batch_size=batch_size), expected, rtol=1e-5)
    np.testing.assert_allclose(window_losses(model, ids, windows=2), expected[:2], rtol=1e-5)
    assert window_losses(model, ids).mean() == pytest.approx(mean_window_loss(model, ids), rel=1e-5)


def test_window_losses_reject_more_windows_than_the_text_holds():
    with pytest.raises(ValueError, match="windows must be 1 to 3"):
        window_losses(_model(), list(range(3 * 8 + 1)), windows=4)
    with pytest.raises(ValueError, match="at least context_length"):
        window_losses(_model(), [1] * 8)
