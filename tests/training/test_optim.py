"""SGD, AdamW, the cosine schedule and gradient clipping against closed forms and torch built-ins."""

import math

import pytest
import torch

from lmbasics import SGD, AdamW, clip_grad_norm, cosine_lr_schedule

SHAPES = [(5, 7), (7,), (3, 2, 4), ()]


def _params(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in SHAPES]


def _run(optimizer_cls, params, steps, seed, **kwargs):
    """`steps` optimizer steps on the given parameters, with the same random gradients for every caller."""
    opt = optimizer_cls(params, **kwargs)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    return opt


# --- SGD (handout's toy) ---


@pytest.mark.parametrize("lr", [1.0, 10.0, 100.0, 1000.0])
def test_sgd_toy_follows_its_closed_form(lr):
    # Loss mean(w²) over 100 entries has gradient w/50, so each step multiplies w by 1 − lr/(50·sqrt(t+1)).
    w0 = 5 * torch.randn(10, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = torch.nn.Parameter(w0.clone())
    opt = SGD([weights], lr=lr)
    for _ in range(10):
        opt.zero_grad()
        (weights**2).mean().backward()
        opt.step()
    factor = math.prod(1 - lr / (50 * math.sqrt(t + 1)) for t in range(10))
    # (At lr = 100 the factor is exactly 0: the fourth step has 1 − 2/sqrt(4) = 0.)
    torch.testing.assert_close(weights.detach(), w0 * factor, rtol=1e-10, atol=1e-12)


def test_sgd_toy_losses_decay_or_diverge_as_the_handout_says():
    def losses(lr):
        weights = torch.nn.Parameter(5 * torch.randn(10, 10, generator=torch.Generator().manual_seed(0)))
        opt, out = SGD([weights], lr=lr), []
        for _ in range(10):
            opt.zero_grad()
            loss = (weights**2).mean()
            out.append(loss.item())
            loss.backward()
            opt.step()
        return out

    l10, l100, l1000 = losses(1e1), losses(1e2), losses(1e3)
    assert all(b < a for a, b in zip(l10, l10[1:]))
    assert l100[-1] < 1e-3 * l100[0] < l10[-1]  # faster
    assert all(b > a for a, b in zip(l1000, l1000[1:]))  # diverges


# --- AdamW ---


def test_adamw_equals_torch_exactly_when_eps_is_zero():
    # With ε = 0 the handout's α_t form and torch's bias-corrected form are the same function.
    kwargs = dict(lr=1e-2, betas=(0.9, 0.95), eps=0.0, weight_decay=0.1)
    ours, ref = _params(0), _params(0)
    _run(AdamW, ours, steps=12, seed=1, **kwargs)
    _run(torch.optim.AdamW, ref, steps=12, seed=1, **kwargs)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_adamw_matches_torch_over_several_steps_in_float32():
    # With ε > 0 the two differ only in where ε sits: ours adds it to sqrt(v), torch to sqrt(v/(1−β2^t)),
    # so ours acts like torch with ε/sqrt(1−β2^t) (≈ 30ε at t = 1 for β2 = 0.999): a change of about
    # lr·30ε/|g| per step, below float32 resolution unless a gradient is tiny.
    kwargs = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    ours, ref = _params(2, torch.float32), _params(2, torch.float32)
    opt = _run(AdamW, ours, steps=10, seed=3, **kwargs)
    _run(torch.optim.AdamW, ref, steps=10, seed=3, **kwargs)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert all(opt.state[p]["t"] == 10 for p in ours)


def test_adamw_weight_decay_alone_shrinks_parameters_geometrically():
    # Zero gradients leave m = v = 0, so only the decoupled decay θ ← (1 − αλ)θ acts.
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    for _ in range(4):
        p.grad = torch.zeros_like(p)
        opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.95**4, dtype=torch.float64))


def test_adamw_resumes_from_state_dict_exactly():
    kwargs = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    straight = _params(4)
    _run(AdamW, straight, steps=6, seed=5, **kwargs)

    resumed = _params(4)
    g = torch.Generator().manual_seed(5)
    opt = AdamW(resumed, **kwargs)
    for step in range(6):
        if step == 3:  # rebuild the optimizer from its saved state halfway
            saved = opt.state_dict()
            opt = AdamW(resumed, **kwargs)
            opt.load_state_dict(saved)
        for p in resumed:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


def test_adamw_respects_parameter_groups_and_skips_missing_grads():
    a, b, frozen = _params(6)[:3]
    opt = AdamW([{"params": [a], "lr": 0.0}, {"params": [b, frozen]}], lr=1e-2, weight_decay=0.0)
    a0, b0, frozen0 = a.detach().clone(), b.detach().clone(), frozen.detach().clone()
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    assert torch.equal(a, a0) and torch.equal(frozen, frozen0)
    # First step of Adam moves each coordinate by lr·sign(g), up to ε/sqrt(1−β2) relative.
    torch.testing.assert_close(b.detach(), b0 - 1e-2, rtol=0, atol=1e-8)
    assert frozen not in opt.state


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1.0), "learning rate"),
        (dict(betas=(1.0, 0.9)), r"betas\[0\]"),
        (dict(betas=(0.9, -0.1)), r"betas\[1\]"),
        (dict(eps=-1e-8), "eps"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_adamw_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamW(_params(0), **kwargs)


# --- cosine schedule ---

SCHEDULE = dict(max_learning_rate=1.0, min_learning_rate=0.1, warmup_iters=7, cosine_cycle_iters=21)


def test_schedule_warmup_is_linear_from_zero():
    lrs = [cosine_lr_schedule(t, **SCHEDULE) for t in range(8)]
    assert lrs[0] == 0.0
    assert lrs == pytest.approx([t / 7 for t in range(8)])  # reaches the maximum at t = T_w


def test_schedule_endpoints_midpoint_and_floor():
    assert cosine_lr_schedule(7, **SCHEDULE) == pytest.approx(1.0)
    assert cosine_lr_schedule(14, **SCHEDULE) == pytest.approx(0.55)  # halfway: mean of max and min
    assert cosine_lr_schedule(21, **SCHEDULE) == pytest.approx(0.1)
    assert [cosine_lr_schedule(t, **SCHEDULE) for t in (22, 100, 10**6)] == [0.1, 0.1, 0.1]


def test_schedule_cosine_part_is_decreasing_and_point_symmetric():
    lrs = [cosine_lr_schedule(t, **SCHEDULE) for t in range(7, 22)]
    assert all(b < a for a, b in zip(lrs, lrs[1:]))
    # cos(π − x) = −cos(x): values at equal distance from the ends average to the midpoint.
    for k in range(15):
        assert lrs[k] + lrs[14 - k] == pytest.approx(1.1)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="must exceed"):
        cosine_lr_schedule(0, 1.0, 0.1, warmup_iters=10, cosine_cycle_iters=10)
    with pytest.raises(ValueError, match="it must be"):
        cosine_lr_schedule(-1, **SCHEDULE)
    with pytest.raises(ValueError, match="min_learning_rate"):
        cosine_lr_schedule(0, 0.1, 1.0, 7, 21)


# --- gradient clipping ---


@pytest.mark.parametrize("max_norm", [0.01, 1.0, 1e4])
def test_clip_grad_norm_matches_torch(max_norm):
    ours, ref = _params(7, torch.float32), _params(7, torch.float32)
    g = torch.Generator().manual_seed(8)
    for a, b in zip(ours[:-1], ref[:-1]):  # the last parameter has no gradient
        a.grad = 3 * torch.randn(a.shape, generator=g)
        b.grad = a.grad.clone()
    total = clip_grad_norm(iter(ours), max_norm)  # any iterable, e.g. model.parameters()
    expected = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    torch.testing.assert_close(total, expected)
    for a, b in zip(ours[:-1], ref[:-1]):
        torch.testing.assert_close(a.grad, b.grad)
    assert ours[-1].grad is None


def test_clipped_norm_lands_just_under_the_bound():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([30.0, 40.0, 0.0, 0.0])  # norm 50
    assert clip_grad_norm([p], 5.0).item() == pytest.approx(50.0)
    assert 5.0 - 1e-6 < torch.linalg.vector_norm(p.grad).item() < 5.0
    with pytest.raises(ValueError, match="max_l2_norm"):
        clip_grad_norm([p], 0.0)
