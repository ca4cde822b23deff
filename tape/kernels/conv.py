"""Convolutions (NCHW input, OIHW weight, as PyTorch) and 2-d pools, forward and vjp, on flat data.

Each sample's input is padded once, then gathered im2col-style into one row per
weight entry (channel, kernel row, kernel column), each row a few strided slices; the
output is ``sum(map(mul, weights, patch))`` per filter and position, and the vjps are
the same products transposed, scattered back with strided slice assignment.
"""

from __future__ import annotations

from operator import add, mul

from tape.kernels.reduce import scatter_vjp
from tape.kernels.shapes import Data, Shape, check_data, check_shape, gather, grid_positions

Pair = int | tuple[int, int]
"""A size per spatial axis, or one for both."""


def _pair(value: Pair, name: str, op: str, *, least: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else value
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, int) for v in pair)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < least:
        raise ValueError(f"{op}: {name} must be at least {least}, got {value!r}")
    return pair


def _out_size(
    op: str, spatial: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int]
) -> tuple[int, int]:
    padded = (spatial[0] + 2 * pad[0], spatial[1] + 2 * pad[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(f"{op}: kernel {kernel} is larger than the padded input {padded}")
    return (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1


def _pad(x: Data, planes: int, h: int, w: int, ph: int, pw: int) -> list[float]:
    """Zero-pad each of ``planes`` ``(h, w)`` planes by ``ph`` rows and ``pw`` columns on each side."""
    if ph == 0 and pw == 0:
        return list(x)
    wp = w + 2 * pw
    edge = [0.0] * (ph * wp)
    side = [0.0] * pw
    out: list[float] = []
    for base in range(0, planes * h * w, w * h):
        out.extend(edge)
        for r in range(base, base + h * w, w):
            out.extend(side)
            out.extend(x[r : r + w])
            out.extend(side)
        out.extend(edge)
    return out


def _crop(xp: list[float], planes: int, h: int, w: int, ph: int, pw: int) -> list[float]:
    """The inverse of ``_pad``: the interior of each padded plane."""
    if ph == 0 and pw == 0:
        return xp
    wp, hp = w + 2 * pw, h + 2 * ph
    out: list[float] = []
    for base in range(0, planes * hp * wp, hp * wp):
        for r in range(base + ph * wp + pw, base + (ph + h) * wp + pw, wp):
            out.extend(xp[r : r + w])
    return out


class _Grid:
    """Where the windows of one padded ``(c, hp, wp)`` sample sit: a slice per (weight entry, output row)."""

    __slots__ = ("kernel", "slices", "stride")

    def __init__(
        self, c: int, hp: int, wp: int, kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]
    ) -> None:
        (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
        self.kernel, self.stride = kernel, stride
        span = (ow - 1) * sw + 1
        self.slices = [
            [
                slice(s, s + span, sw)
                for s in range(ch * hp * wp + i * wp + j, ch * hp * wp + (i + oh * sh) * wp + j, sh * wp)
            ]
            for ch in range(c)
            for i in range(kh)
            for j in range(kw)
        ]

    def gather(self, xp: Data, offset: int) -> list[list[float]]:
        """One row per weight entry: its input under every output position, row-major."""
        rows = []
        for parts in self.slices:
            row: list[float] = []
            for s in parts:
                row.extend(xp[s.start + offset : s.stop + offset : s.step])
            rows.append(row)
        return rows

    def scatter_add(self, target: list[float], offset: int, rows: list[list[float]], ow: int) -> None:
        """Add each row back under the positions ``gather`` read it from (in place on ``target``)."""
        for parts, row in zip(self.slices, rows, strict=True):
            for r, s in enumerate(parts):
                where = slice(s.start + offset, s.stop + offset, s.step)
                target[where] = list(map(add, target[where], row[r * ow : (r + 1) * ow]))


def _conv_plan(
    x: Data, x_shape: Shape, w: Data, w_shape: Shape, b: Data | None, stride: Pair, padding: Pair, op: str
) -> tuple[
    tuple[int, int, int, int, int, int, int], tuple[int, int], tuple[int, int], tuple[int, int], _Grid
]:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(
            f"{op}: x must be (N, C, H, W) and weight (O, C, KH, KW), got shapes {x_shape} and {w_shape}"
        )
    check_data(x, x_shape, op=op, name="x")
    check_data(w, w_shape, op=op, name="weight")
    n, c, h, wd = x_shape
    o, cw, kh, kw = w_shape
    if cw != c:
        raise ValueError(
            f"{op}: x has {c} channels (shape {x_shape}) but weight expects {cw} (shape {w_shape})"
        )
    if b is not None and len(b) != o:
        raise ValueError(f"{op}: bias has {len(b)} entries but weight {w_shape} has {o} filters")
    st = _pair(stride, "stride", op, least=1)
    pad = _pair(padding, "padding", op, least=0)
    out = _out_size(op, (h, wd), (kh, kw), st, pad)
    grid = _Grid(c, h + 2 * pad[0], wd + 2 * pad[1], (kh, kw), st, out)
    return (n, c, h, wd, o, kh, kw), st, pad, out, grid


def conv2d(
    x: Data,
    x_shape: Shape,
    w: Data,
    w_shape: Shape,
    b: Data | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
) -> tuple[list[float], Shape]:
    """``torch.nn.functional.conv2d``: ``x`` (N, C, H, W), ``w`` (O, C, KH, KW), ``b`` (O,) or None.

    Zero ``padding`` on each side; returns the (N, O, OH, OW) output and its shape.

    >>> conv2d([1.0, 2.0, 3.0, 4.0], (1, 1, 2, 2), [1.0, 1.0], (1, 1, 1, 2), [0.5])
    ([3.5, 7.5], (1, 1, 2, 1))
    """
    return _conv2d(x, x_shape, w, w_shape, b, stride, padding, "conv2d")


def _conv2d(
    x: Data, x_shape: Shape, w: Data, w_shape: Shape, b: Data | None, stride: Pair, padding: Pair, op: str
) -> tuple[list[float], Shape]:
    (n, c, h, wd, o, kh, kw), _, pad, (oh, ow), grid = _conv_plan(
        x, x_shape, w, w_shape, b, stride, padding, op
    )
    xp = _pad(x, n * c, h, wd, *pad)
    k = c * kh * kw
    filters = [w[f * k : (f + 1) * k] for f in range(o)]
    bias = list(b) if b is not None else [0.0] * o
    sample = c * (h + 2 * pad[0]) * (wd + 2 * pad[1])
    out: list[float] = []
    for i in range(n):
        patches = list(zip(*grid.gather(xp, i * sample), strict=True))
        for f, bf in zip(filters, bias, strict=True):
            out.extend([sum(map(mul, f, p), bf) for p in patches])
    return out, (n, o, oh, ow)


def conv2d_vjp(
    grad: Data,
    x: Data,
    x_shape: Shape,
    w: Data,
    w_shape: Shape,
    b: Data | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    *,
    input_grad: bool = True,
) -> tuple[list[float] | None, list[float], list[float] | None]:
    """The gradients of ``conv2d`` for ``x``, ``w`` and ``b`` (``None`` when there is no bias).

    ``input_grad=False`` skips ``x``'s (``None`` then): the data of a first layer needs none.
    """
    return _conv2d_vjp(grad, x, x_shape, w, w_shape, b, stride, padding, "conv2d", input_grad)


def _conv2d_vjp(
    grad: Data,
    x: Data,
    x_shape: Shape,
    w: Data,
    w_shape: Shape,
    b: Data | None,
    stride: Pair,
    padding: Pair,
    op: str,
    input_grad: bool = True,
) -> tuple[list[float] | None, list[float], list[float] | None]:
    (n, c, h, wd, o, kh, kw), _, pad, (oh, ow), grid = _conv_plan(
        x, x_shape, w, w_shape, b, stride, padding, op
    )
    check_data(grad, (n, o, oh, ow), op=op, name="grad")
    xp = _pad(x, n * c, h, wd, *pad)
    k, p = c * kh * kw, oh * ow
    sample = c * (h + 2 * pad[0]) * (wd + 2 * pad[1])
    weight_columns = [w[j::k] for j in range(k)]
    gxp = [0.0] * len(xp)
    rows_all: list[list[float]] = [[] for _ in range(k)]
    g_all: list[list[float]] = [[] for _ in range(o)]
    for i in range(n):
        g_rows = [grad[(i * o + f) * p : (i * o + f + 1) * p] for f in range(o)]
        for f, g in enumerate(g_rows):
            g_all[f].extend(g)
        for j, row in enumerate(grid.gather(xp, i * sample)):
            rows_all[j].extend(row)
        if input_grad:
            per_position = list(zip(*g_rows, strict=True))
            cols = [[sum(map(mul, wc, gp)) for gp in per_position] for wc in weight_columns]
            grid.scatter_add(gxp, i * sample, cols, ow)
    gw = [sum(map(mul, g, r)) for g in g_all for r in rows_all]
    gb = [sum(g) for g in g_all] if b is not None else None
    return (_crop(gxp, n * c, h, wd, *pad) if input_grad else None), gw, gb


def _as_2d(
    x_shape: Shape, w_shape: Shape, stride: int, padding: int, op: str
) -> tuple[Shape, Shape, Pair, Pair]:
    if len(x_shape) != 3 or len(w_shape) != 3:
        raise ValueError(
            f"{op}: x must be (N, C, L) and weight (O, C, K), got shapes {x_shape} and {w_shape}"
        )
    for name, v in (("stride", stride), ("padding", padding)):
        if not isinstance(v, int):
            raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    return (
        (x_shape[0], x_shape[1], 1, x_shape[2]),
        (w_shape[0], w_shape[1], 1, w_shape[2]),
        (1, stride),
        (0, padding),
    )


def conv1d(
    x: Data, x_shape: Shape, w: Data, w_shape: Shape, b: Data | None = None, stride: int = 1, padding: int = 0
) -> tuple[list[float], Shape]:
    """``torch.nn.functional.conv1d``: ``x`` (N, C, L), ``w`` (O, C, K); the (N, O, OL) output and its shape.

    >>> conv1d([1.0, 2.0, 3.0], (1, 1, 3), [1.0, -1.0], (1, 1, 2))
    ([-1.0, -1.0], (1, 1, 2))
    """
    xs, ws, st, pad = _as_2d(x_shape, w_shape, stride, padding, "conv1d")
    out, (n, o, _, ol) = _conv2d(x, xs, w, ws, b, st, pad, "conv1d")
    return out, (n, o, ol)


def conv1d_vjp(
    grad: Data,
    x: Data,
    x_shape: Shape,
    w: Data,
    w_shape: Shape,
    b: Data | None = None,
    stride: int = 1,
    padding: int = 0,
    *,
    input_grad: bool = True,
) -> tuple[list[float] | None, list[float], list[float] | None]:
    """The gradients of ``conv1d`` for ``x``, ``w`` and ``b`` (see :func:`conv2d_vjp`)."""
    xs, ws, st, pad = _as_2d(x_shape, w_shape, stride, padding, "conv1d")
    return _conv2d_vjp(grad, x, xs, w, ws, b, st, pad, "conv1d", input_grad)


def _pool_plan(
    x: Data | None, x_shape: Shape, kernel_size: Pair, stride: Pair | None, op: str
) -> tuple[int, int, int, tuple[int, int], tuple[int, int], tuple[int, int]]:
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {x_shape}")
    check_shape(x_shape, op=op, name="the shape of x")
    if x is not None:
        check_data(x, x_shape, op=op, name="x")
    n, c, h, w = x_shape
    kernel = _pair(kernel_size, "kernel_size", op, least=1)
    st = kernel if stride is None else _pair(stride, "stride", op, least=1)
    out = _out_size(op, (h, w), kernel, st, (0, 0))
    return n * c, h, w, kernel, out, st


def _window_entries(
    x: Data,
    planes: int,
    h: int,
    w: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    out: tuple[int, int],
) -> list[list[float]]:
    """Entry ``j`` (row-major in the window) of every pooling window, one list per ``j``."""
    extents, steps = (planes, *out), (h * w, stride[0] * w, stride[1])
    return [gather(x, extents, steps, i * w + j) for i in range(kernel[0]) for j in range(kernel[1])]


def max_pool2d(
    x: Data, x_shape: Shape, kernel_size: Pair, stride: Pair | None = None
) -> tuple[list[float], Shape, list[int]]:
    """``torch.nn.functional.max_pool2d`` (no padding; ``stride`` defaults to the kernel).

    Returns the output, its shape, and for each output the flat input position of the
    first maximal entry of its window (row-major), where ``max_pool2d_vjp`` sends the gradient.

    >>> max_pool2d([1.0, 4.0, 4.0, 2.0], (1, 1, 2, 2), 2)
    ([4.0], (1, 1, 1, 1), [1])
    """
    planes, h, w, kernel, (oh, ow), st = _pool_plan(x, x_shape, kernel_size, stride, "max_pool2d")
    shape = (*x_shape[:2], oh, ow)
    if planes == 0:
        return [], shape, []
    entries = _window_entries(x, planes, h, w, kernel, st, (oh, ow))
    corners = grid_positions((planes, oh, ow), (h * w, st[0] * w, st[1]))  # each window's first entry
    if len(entries) == 1:
        return entries[0], shape, list(corners)
    best = list(map(max, *entries))
    first = map(tuple.index, zip(*entries, strict=True), best)  # the first maximal entry of each window
    offsets = [i * w + j for i in range(kernel[0]) for j in range(kernel[1])]
    return best, shape, list(map(add, corners, map(offsets.__getitem__, first)))


def max_pool2d_vjp(grad: Data, x_shape: Shape, positions: list[int]) -> list[float]:
    """The gradient of ``max_pool2d``: each output's gradient added at its first maximum."""
    n, c, h, w = x_shape
    return scatter_vjp(grad, positions, n * c * h * w)


def avg_pool2d(
    x: Data, x_shape: Shape, kernel_size: Pair, stride: Pair | None = None
) -> tuple[list[float], Shape]:
    """``torch.nn.functional.avg_pool2d`` (no padding; ``stride`` defaults to the kernel).

    >>> avg_pool2d([1.0, 2.0, 3.0, 6.0], (1, 1, 2, 2), 2)
    ([3.0], (1, 1, 1, 1))
    """
    planes, h, w, (kh, kw), out, st = _pool_plan(x, x_shape, kernel_size, stride, "avg_pool2d")
    shape = (*x_shape[:2], *out)
    if planes == 0:
        return [], shape
    count = kh * kw
    entries = _window_entries(x, planes, h, w, (kh, kw), st, out)
    return [total / count for total in map(sum, zip(*entries, strict=True))], shape


def avg_pool2d_vjp(grad: Data, x_shape: Shape, kernel_size: Pair, stride: Pair | None = None) -> list[float]:
    """The gradient of ``avg_pool2d``: each output's gradient shared equally by its window."""
    planes, h, w, (kh, kw), (oh, ow), st = _pool_plan(None, x_shape, kernel_size, stride, "avg_pool2d")
    grid = _Grid(1, h, w, (kh, kw), st, (oh, ow))
    check_data(grad, (*x_shape[:2], oh, ow), op="avg_pool2d", name="grad")
    count = kh * kw
    p = oh * ow
    gx = [0.0] * (planes * h * w)
    for plane in range(planes):
        share = [g / count for g in grad[plane * p : (plane + 1) * p]]
        grid.scatter_add(gx, plane * h * w, [share] * count, ow)
    return gx
