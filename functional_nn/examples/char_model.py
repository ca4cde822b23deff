"""A character-level language model: a GRU trained on the opening of *Coriolanus*, then sampled.

Run it with ``python -m functional_nn.examples.char_model`` (``--help`` for the
options). It reads ``functional_nn/data/tinyshakespeare.txt`` (shipped; see the data
README), builds :class:`CharModel` (``Embedding``, ``GRU``, ``Linear`` from
:mod:`functional_nn.layers`), trains it with Adam through
:func:`functional_nn.train.train_step` on random windows of the text, printing the
loss as it falls, and then prints text sampled from the model one character at a
time. Everything random comes from ``--seed``: the same seed prints the same run.

The same pieces work from Python:

>>> text = load_text()
>>> vocab = Vocabulary.of(text)
>>> vocab.decode(vocab.encode("First Citizen"))
'First Citizen'
>>> model = CharModel(len(vocab), embedding=8, hidden=16)
>>> sorted(model.init(random.key(0)))
['embedding', 'gru', 'head']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TextIO, cast

from pyrsistent import pmap

import optimizers
from functional_nn import random
from functional_nn.dataloader import Batch, Row
from functional_nn.functional import softmax
from functional_nn.layers import GRU, Embedding, LayerNorm, LayerParams, Linear, MultiHeadAttention
from functional_nn.objective import Metrics
from functional_nn.train import train_step
from tape import Scalar, arrays

__all__ = [
    "AttentionCharModel",
    "CharModel",
    "CharModels",
    "NextCharLoss",
    "Vocabulary",
    "generate",
    "load_text",
    "main",
    "sample_windows",
    "train",
]

TEXT_FILE = "tinyshakespeare.txt"


def load_text() -> str:
    """The shipped text: the first 32 KB of the tiny-Shakespeare corpus (see ``data/README.md``)."""
    return resources.files("functional_nn").joinpath("data").joinpath(TEXT_FILE).read_text("utf-8")


@dataclass(frozen=True)
class Vocabulary:
    """The characters of a text, sorted; a character's id is its index."""

    chars: str

    @staticmethod
    def of(text: str) -> Vocabulary:
        """The vocabulary of the characters in ``text``."""
        if not text:
            raise ValueError("Vocabulary.of: the text is empty")
        return Vocabulary("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> tuple[int, ...]:
        """The ids of ``text``'s characters; a ValueError names one outside the vocabulary."""
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return tuple(index[c] for c in text)
        except KeyError as error:
            raise ValueError(f"Vocabulary.encode: {error.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        """The characters of ``ids``."""
        return "".join(self.chars[i] for i in ids)


@dataclass(frozen=True)
class CharModel:
    """Next-character logits: ``Embedding(vocab, embedding)``, a ``GRU(embedding, hidden)``, a ``Linear``.

    ``apply(params, ids)`` maps a batch of id sequences, shape ``(batch, time)``, to
    logits of shape ``(batch, time, vocab)``: position ``t`` predicts character ``t + 1``.
    Params are named as the PyTorch modules' (``embedding.weight``, ``gru.weight_ih_l0``,
    ..., ``head.weight``, ``head.bias``).
    """

    vocab: int
    embedding: int = 16
    hidden: int = 32

    def _layers(self) -> tuple[Embedding, GRU, Linear]:
        return (
            Embedding(self.vocab, self.embedding),
            GRU(self.embedding, self.hidden),
            Linear(self.hidden, self.vocab),
        )

    def init(self, key: random.Key) -> LayerParams:
        """Fresh params drawn from ``key``."""
        embedding, gru, head = self._layers()
        k1, k2, k3 = random.split(key, 3)
        return pmap({"embedding": embedding.init(k1), "gru": gru.init(k2), "head": head.init(k3)})

    def apply(
        self, params: LayerParams, x: Any, *, key: random.Key | None = None, train: bool = False
    ) -> Any:
        """The logits of each position of each sequence in the batch ``x`` of ids."""
        embedding, gru, head = self._layers()
        h = embedding.apply(params["embedding"], x)
        h = gru.apply(params["gru"], h)
        return head.apply(params["head"], h)


@dataclass(frozen=True)
class AttentionCharModel:
    """Next-character logits from one causal transformer block (pre-norm, as GPT-2's).

    ``h = token embedding + position embedding``, then ``h + attention(norm(h))`` with a
    causal ``MultiHeadAttention``, then ``Linear(norm(h))``: written as a pure function
    over the layers of :mod:`functional_nn.layers`, with ``arrays.add`` for the residual
    and the positions. ``apply(params, ids)`` maps ``(batch, time)`` ids, ``time`` at most
    ``context``, to ``(batch, time, vocab)`` logits.
    """

    vocab: int
    width: int = 32
    heads: int = 2
    context: int = 32

    def _layers(self) -> tuple[Embedding, Embedding, LayerNorm, MultiHeadAttention, LayerNorm, Linear]:
        return (
            Embedding(self.vocab, self.width),
            Embedding(self.context, self.width),
            LayerNorm(self.width),
            MultiHeadAttention(self.width, self.heads, causal=True),
            LayerNorm(self.width),
            Linear(self.width, self.vocab),
        )

    def init(self, key: random.Key) -> LayerParams:
        """Fresh params drawn from ``key``."""
        embedding, position, norm, attention, head_norm, head = self._layers()
        k = random.split(key, 6)
        return pmap(
            {
                "embedding": embedding.init(k[0]),
                "position": position.init(k[1]),
                "norm": norm.init(k[2]),
                "attention": attention.init(k[3]),
                "head_norm": head_norm.init(k[4]),
                "head": head.init(k[5]),
            }
        )

    def apply(
        self, params: LayerParams, x: Any, *, key: random.Key | None = None, train: bool = False
    ) -> Any:
        """The logits of each position of each sequence in the batch ``x`` of ids."""
        embedding, position, norm, attention, head_norm, head = self._layers()
        time = len(x[0]) if len(x) else 0
        if time > self.context:
            raise ValueError(f"AttentionCharModel: {time} steps but the model has {self.context} positions")
        h = arrays.add(
            embedding.apply(params["embedding"], x), position.apply(params["position"], [range(time)])
        )
        h = arrays.add(h, attention.apply(params["attention"], norm.apply(params["norm"], h)))
        return head.apply(params["head"], head_norm.apply(params["head_norm"], h))


CharModels = CharModel | AttentionCharModel
"""The example's two models: both map ``(batch, time)`` ids to ``(batch, time, vocab)`` logits."""


@dataclass(frozen=True)
class NextCharLoss:
    """The mean cross-entropy of predicting each next character of a batch of windows.

    A batch's inputs are windows of ``time + 1`` ids: the model reads the first
    ``time`` and is scored on the last ``time``.
    """

    model: CharModels

    def __call__(
        self, params: LayerParams, batch: Batch, key: random.Key | None, /
    ) -> tuple[Scalar, Metrics]:
        """``(mean loss, no metrics)`` of the batch's windows."""
        windows = [tuple(int(i) for i in w) for w in batch.inputs]
        inputs = [w[:-1] for w in windows]
        targets = tuple(i for w in windows for i in w[1:])
        logits = self.model.apply(params, inputs)
        flat = arrays.reshape(logits, (-1, self.model.vocab))
        return arrays.cross_entropy_with_logits(flat, targets), {}


def sample_windows(ids: Sequence[int], key: random.Key, count: int, length: int) -> Batch:
    """``count`` windows of ``length`` ids starting at random places of ``ids``, as a batch's inputs."""
    if len(ids) <= length:
        raise ValueError(f"sample_windows: the text has {len(ids)} ids, too few for windows of {length}")
    starts = random.randint(key, count, 0, len(ids) - length)
    windows = tuple(tuple(ids[s : s + length]) for s in starts)
    return Batch(cast("tuple[Row, ...]", windows), tuple(0 for _ in windows))  # ids ride as a batch's rows


def train(
    model: CharModels,
    ids: Sequence[int],
    *,
    steps: int,
    batch_size: int,
    time: int,
    lr: float,
    key: random.Key,
    every: int = 0,
    out: TextIO | None = None,
) -> tuple[LayerParams, list[float]]:
    """Train ``model`` on windows of ``ids`` for ``steps`` Adam steps; the params and each step's loss.

    With ``every`` and ``out``, prints the mean loss of every ``every`` steps.
    """
    init_key, data_key = random.split(key)
    params = model.init(init_key)
    optimizer = optimizers.adam(lr)
    state = optimizer.init(params)
    step = train_step(NextCharLoss(model), optimizer)
    losses: list[float] = []
    for index in range(steps):
        batch = sample_windows(ids, random.fold_in(data_key, index), batch_size, time + 1)
        params, state, metrics = step(params, state, batch, None)
        losses.append(metrics["loss"])
        if out is not None and every and (index + 1) % every == 0:
            recent = losses[-every:]
            print(f"step {index + 1:4d}  loss {sum(recent) / len(recent):.3f}", file=out, flush=True)
    return params, losses


def generate(
    model: CharModels,
    params: LayerParams,
    vocab: Vocabulary,
    prompt: str,
    length: int,
    *,
    key: random.Key,
    context: int = 32,
    temperature: float = 0.8,
) -> str:
    """``prompt`` followed by ``length`` characters sampled one by one (floats, no tape).

    Each character is drawn from the softmax of the model's last logits divided by
    ``temperature``, given the last ``context`` characters.
    """
    if not prompt:
        raise ValueError("generate: the prompt is empty; give at least one character")
    if not temperature > 0:
        raise ValueError(f"generate: temperature must be > 0, got {temperature}")
    ids = list(vocab.encode(prompt))
    for index in range(length):
        logits = model.apply(params, [ids[-context:]])[0][-1]
        probs = softmax([float(v) / temperature for v in logits])
        (u,) = random.uniform(random.fold_in(key, index), 1)
        total = 0.0
        choice = len(probs) - 1
        for i, p in enumerate(probs):
            total += float(p)
            if u < total:
                choice = i
                break
        ids.append(choice)
    return vocab.decode(ids)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Train on the shipped text and print the falling loss, then generated text."""
    p = argparse.ArgumentParser(
        prog="python -m functional_nn.examples.char_model",
        description="Train a character-level GRU (or a causal attention block) on the opening of "
        "Coriolanus, then sample from it.",
    )
    p.add_argument(
        "--model",
        choices=("gru", "attention"),
        default="gru",
        help="a GRU, or one causal transformer block (default: gru)",
    )
    p.add_argument("--steps", type=int, default=100, help="Adam steps (default: 100)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step (default: 8)")
    p.add_argument("--time", type=int, default=16, help="characters per window (default: 16)")
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden size, or attention width (default: 32)")
    p.add_argument("--lr", type=float, default=0.03, help="learning rate (default: 0.03)")
    p.add_argument("--length", type=int, default=150, help="characters to generate (default: 150)")
    p.add_argument("--prompt", default="First Citizen:\n", help="text to start generating from")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "time", "hidden"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    text = load_text()
    vocab = Vocabulary.of(text)
    try:
        vocab.encode(args.prompt)
    except ValueError as error:
        p.error(f"--prompt: {error}")
    context = 32
    if args.model == "attention" and args.time > context:
        p.error(f"--time: the attention model has {context} positions; give at most {context}")
    model: CharModels = (
        CharModel(len(vocab), hidden=args.hidden)
        if args.model == "gru"
        else AttentionCharModel(len(vocab), width=args.hidden, context=context)
    )
    described = (
        f"a GRU ({args.hidden} hidden)"
        if args.model == "gru"
        else f"a causal attention block ({args.hidden} wide, 2 heads)"
    )
    train_key, sample_key = random.split(random.key(args.seed))
    print(
        f"training {described} on {len(text)} characters of Coriolanus "
        f"({len(vocab)} distinct), {args.steps} steps of {args.batch_size} windows of {args.time}",
        file=out,
        flush=True,
    )
    params, losses = train(
        model,
        vocab.encode(text),
        steps=args.steps,
        batch_size=args.batch_size,
        time=args.time,
        lr=args.lr,
        key=train_key,
        every=max(1, args.steps // 10),
        out=out,
    )
    print(f"loss: {losses[0]:.3f} at the first step, {losses[-1]:.3f} at the last", file=out)
    print("generated:", file=out)
    print(generate(model, params, vocab, args.prompt, args.length, key=sample_key, context=context), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
