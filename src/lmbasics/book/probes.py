"""Looking inside a trained model (chapters 9 and 10): how large the activations are after each
layer, and how much each token of a text costs the model.

`activation_norms` runs one forward pass with forward hooks and returns the root-mean-square size of
the residual stream after the embedding and after every block, of the LM head's input and of the
logits: the picture of what the norms (or their absence) do to the scale of the activations.
`token_losses` returns the loss of every next-token prediction in a window of text, which
`loss_heatmap` colours token by token. `mean_window_loss` is the mean of such losses over a whole
text: the deterministic evaluation that chapter 10 compares datasets and tokenizers with, and
`window_losses` keeps those losses apart, window by window and position by position.

What it does not do: it never changes the model (the hooks are removed before returning) and does
not train; pass a model in eval mode, e.g. from `load_model`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from lmbasics.model.lm import TransformerLM
from lmbasics.training.loss import cross_entropy


def _rms(x: Float[Tensor, "... d"]) -> float:
    """Root-mean-square over the feature dimension, averaged over every other dimension."""
    return float(x.float().pow(2).mean(dim=-1).sqrt().mean())


@torch.no_grad()
def activation_norms(model: TransformerLM, token_ids: Int[Tensor, "batch seq"]) -> dict[str, float]:
    """RMS size of the activations along the model, for a batch of token ids.

    Keys, in order: "embedding", "block 1" ... "block L" (the residual stream after each block),
    "LM head input" (after the final norm, where there is one) and "logits". Collected with forward
    hooks, so the model's own forward runs unchanged."""
    if token_ids.ndim != 2:
        raise ValueError(f"token_ids must be (batch, seq), got shape {tuple(token_ids.shape)}")
    norms: dict[str, float] = {}
    stages = [("embedding", model.token_embeddings)]
    stages += [(f"block {i + 1}", layer) for i, layer in enumerate(model.layers)]
    handles = [
        module.register_forward_hook(lambda _m, _inputs, output, name=name: norms.__setitem__(name, _rms(output)))
        for name, module in stages
    ]
    handles.append(
        model.lm_head.register_forward_hook(
            lambda _m, inputs, output: norms.update({"LM head input": _rms(inputs[0]), "logits": _rms(output)})
        )
    )
    try:
        model(token_ids)
    finally:
        for handle in handles:
            handle.remove()
    return norms


@torch.no_grad()
def token_losses(model: TransformerLM, token_ids: Sequence[int]) -> Float[np.ndarray, " n"]:
    """Loss in nats of each prediction in one window: entry i is -log p(token i+1 | tokens 0..i).

    The window holds at most `context_length + 1` tokens, so every prediction sees all the text before
    it; `len(token_ids) - 1` losses come back."""
    n = len(token_ids)
    if not 2 <= n <= model.config.context_length + 1:
        limit = model.config.context_length + 1
        raise ValueError(f"token_losses needs 2 to context_length + 1 = {limit} tokens, got {n}")
    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    logits = model(ids[None, :-1])[0].float()  # (n - 1, vocab)
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return (-log_probs.gather(-1, ids[1:, None])[:, 0]).numpy()


def _windows(
    token_ids: Sequence[int] | np.ndarray, context: int, windows: int | None, caller: str
) -> tuple[Int[Tensor, "windows seq"], Int[Tensor, "windows seq"]]:
    """Inputs and targets of the first `windows` (default: all) non-overlapping windows of a text."""
    available = (len(token_ids) - 1) // context
    if available < 1:
        raise ValueError(f"{caller} needs at least context_length + 1 = {context + 1} tokens, got {len(token_ids)}")
    if windows is None:
        windows = available
    elif not 1 <= windows <= available:
        raise ValueError(f"{caller}: windows must be 1 to {available} for {len(token_ids)} tokens, got {windows}")
    ids = torch.from_numpy(np.asarray(token_ids[: windows * context + 1], dtype=np.int64))
    return ids[:-1].view(windows, context), ids[1:].view(windows, context)


@torch.no_grad()
def mean_window_loss(model: TransformerLM, token_ids: Sequence[int] | np.ndarray, batch_size: int = 64) -> float:
    """Mean loss in nats per prediction over every non-overlapping window of `context_length` predictions.

    Unlike the trainer's validation loss (a few random batches), every token of the text after the first
    is predicted exactly once, so the figure is the same on every call; a prediction sees the tokens
    before it in its own window only. The tail that does not fill a window is left out."""
    inputs, targets = _windows(token_ids, model.config.context_length, None, "mean_window_loss")
    batches = zip(inputs.split(batch_size), targets.split(batch_size))
    total = sum(cross_entropy(model(x), y) * len(x) for x, y in batches)
    return float(total / len(inputs))


@torch.no_grad()
def window_losses(
    model: TransformerLM, token_ids: Sequence[int] | np.ndarray, windows: int | None = None, batch_size: int = 16
) -> Float[np.ndarray, "windows seq"]:
    """The loss of every prediction in the first `windows` (default: all) non-overlapping windows of a text.

    Entry [w, i] is -log p(token i + 1 of window w | its tokens 0 ... i): the windows `mean_window_loss`
    averages over, kept apart so that a loss can be read by position in the window (how much the model
    gains from context) as well as averaged."""
    inputs, targets = _windows(token_ids, model.config.context_length, windows, "window_losses")
    rows = []
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        logits = model(x).float()  # (batch, seq, vocab)
        log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        rows.append(-log_probs.gather(-1, y[..., None])[..., 0])
    return torch.cat(rows).numpy()


@dataclass(frozen=True)
class LossHeatmap:
    """Tokens coloured by the loss of predicting them; see `loss_heatmap`."""

    pieces: tuple[str, ...]
    losses: tuple[float, ...]
    vmax: float
    title: str | None = None

    def hardest(self, k: int = 5) -> list[tuple[str, float]]:
        """The `k` most surprising tokens, highest loss first."""
        order = sorted(range(len(self.losses)), key=lambda i: -self.losses[i])[:k]
        return [(self.pieces[i], self.losses[i]) for i in order]

    def __repr__(self) -> str:
        head = f"{self.title}: " if self.title else ""
        hardest = ", ".join(f"{p!r} {loss:.1f}" for p, loss in self.hardest())
        return f"{head}{len(self.pieces)} tokens, mean loss {np.mean(self.losses):.2f} nats; highest: {hardest}"

    def _repr_html_(self) -> str:
        spans = []
        for piece, loss in zip(self.pieces, self.losses):
            t = min(max(loss / self.vmax, 0.0), 1.0)  # 0: white, 1: full red
            shade = round(255 * (1 - t))
            spans.append(
                f'<span title="{loss:.2f} nats" style="background:rgb(255,{shade},{shade})">{html.escape(piece)}</span>'
            )
        caption = f"<div><b>{html.escape(self.title)}</b></div>" if self.title else ""
        scale = f"white: 0 nats, red: {self.vmax:g} nats or more (hover over a token for its loss)"
        return (
            f'<div class="lmbasics-loss-heatmap">{caption}'
            f'<div style="font-family:monospace;line-height:1.7;white-space:pre-wrap">{"".join(spans)}</div>'
            f'<div style="font-size:80%">{scale}</div></div>'
        )


def loss_heatmap(
    pieces: Sequence[str], losses: Sequence[float], vmax: float = 10.0, title: str | None = None
) -> LossHeatmap:
    """Show each piece of text on a background from white (loss 0) to red (loss `vmax` or more).

    Renders as HTML in JupyterLab and the book; prints the mean loss and the hardest tokens."""
    if len(pieces) != len(losses):
        raise ValueError(f"{len(pieces)} pieces but {len(losses)} losses")
    if not vmax > 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    return LossHeatmap(tuple(pieces), tuple(float(x) for x in losses), vmax, title)
