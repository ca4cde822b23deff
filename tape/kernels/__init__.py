"""Float kernels on flat row-major N-d data: pure functions, forward and vjp, no tape.

Each module takes data as a flat sequence of floats plus a shape (a tuple of ints) and
returns new lists; nothing is mutated. ``shapes`` (broadcasting, axes, transpose),
``broadcast`` (elementwise binary ops), ``reduce``, ``matmul``, ``indexing``,
``softmax`` (and layer norm), ``conv`` (convolutions and pools, NCHW/OIHW) and
``attention`` (scaled dot-product attention, fused); ``written`` holds a small linear
layer's kernels written out as Python for its weight's shape.
"""
