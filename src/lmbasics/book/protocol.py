"""How the book compares training settings (chapters 8, 9 and 11): paired seeds, a detectable effect,
and one definition of divergence.

Two settings trained with the same seeds share their initial weights and their batches, so the
per-seed *difference* of their held-out losses cancels most of the seed-to-seed noise. `compare`
takes those differences and decides:

- the **smallest detectable effect** of the design, (t(0.975) + t(0.80)) · sd / √n for n seeds whose
  differences have sample standard deviation sd, with t(p) the quantile of Student's t with n - 1
  degrees of freedom: the true mean difference that a two-sided paired t-test at the 5% level finds
  80% of the time;
- a difference is claimed only when its mean is beyond that effect and every seed agrees on the sign;
  otherwise the verdict is "no difference larger than" the detectable effect, which is what such a
  design can say.

`diverged` is the book's one definition of a diverging run: its final loss is not finite, or is stuck
above ln V, the loss of guessing uniformly among the V tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Two-sided test level and power that define the detectable effect.
SIGNIFICANCE = 0.05
POWER = 0.80


def student_t_cdf(x: float, df: int) -> float:
    """P(T <= x) for Student's t with `df` degrees of freedom (Simpson's rule on the density)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if x < 0:
        return 1.0 - student_t_cdf(-x, df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    # Substituting t = tan(u) maps [0, x] to [0, atan(x)], where the integrand is smooth and bounded.
    u = np.linspace(0.0, math.atan(x), 4001)
    t = np.tan(u)
    density = np.exp(log_norm - (df + 1) / 2 * np.log1p(t * t / df)) / np.cos(u) ** 2
    h = (u[-1] - u[0]) / (len(u) - 1)
    integral = h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
    return 0.5 + float(integral)


def student_t_quantile(p: float, df: int) -> float:
    """The x with P(T <= x) = p for Student's t with `df` degrees of freedom (bisection)."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    low, high = -1e3, 1e3
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if student_t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def detectable_effect(spread: float, seeds: int) -> float:
    """Smallest mean paired difference that `seeds` seeds with difference spread `spread` (sample standard
    deviation) detect with a two-sided paired t-test at `SIGNIFICANCE`, `POWER` of the time."""
    if seeds < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {seeds}")
    df = seeds - 1
    t_sum = student_t_quantile(1 - SIGNIFICANCE / 2, df) + student_t_quantile(POWER, df)
    return t_sum * spread / math.sqrt(seeds)


@dataclass(frozen=True)
class Comparison:
    """Setting B against setting A over the same seeds: the per-seed differences B - A and the verdict."""

    a: str
    b: str
    differences: tuple[float, ...]
    detectable: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences))

    @property
    def resolved(self) -> bool:
        """True when the mean is beyond the detectable effect and every seed has the same sign."""
        signs = {math.copysign(1.0, d) for d in self.differences}
        return abs(self.mean) > self.detectable and len(signs) == 1

    @property
    def verdict(self) -> str:
        """The claim the design supports, in words."""
        if not self.resolved:
            return f"no difference larger than {self.detectable:.3f} nats between {self.b} and {self.a}"
        higher, lower = (self.b, self.a) if self.mean > 0 else (self.a, self.b)
        return f"{lower} is lower than {higher} by {abs(self.mean):.3f} nats (detectable: {self.detectable:.3f})"

    def row(self) -> dict[str, str]:
        """The comparison as one table row (differences in nats, B - A)."""
        return {
            "per-seed B - A": ", ".join(f"{d:+.3f}" for d in self.differences),
            "mean": f"{self.mean:+.3f}",
            "detectable effect": f"{self.detectable:.3f}",
            "verdict": "B higher"
            if self.resolved and self.mean > 0
            else "B lower"
            if self.resolved
            else "no difference",
        }


def compare(a: str, a_losses: Sequence[float], b: str, b_losses: Sequence[float]) -> Comparison:
    """Compare two settings' held-out losses, seed by seed (`a_losses[i]` and `b_losses[i]` share seed i).

    Non-finite losses (diverged runs) cannot be differenced: compare those runs with `diverged` instead."""
    if len(a_losses) != len(b_losses):
        raise ValueError(f"paired seeds: {a} has {len(a_losses)} losses, {b} has {len(b_losses)}")
    differences = np.asarray(b_losses, dtype=float) - np.asarray(a_losses, dtype=float)
    if not np.isfinite(differences).all():
        raise ValueError(f"{a} against {b}: a loss is not finite; a diverged run is reported with `diverged`")
    spread = float(differences.std(ddof=1)) if len(differences) > 1 else math.nan
    return Comparison(a, b, tuple(float(d) for d in differences), detectable_effect(spread, len(differences)))


def diverged(final_loss: float, vocab_size: int) -> bool:
    """The book's definition: a run diverged if its final loss is not finite or is above ln V (uniform)."""
    return not math.isfinite(final_loss) or final_loss > math.log(vocab_size)
