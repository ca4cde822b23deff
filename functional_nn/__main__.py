"""``python -m functional_nn``: the training command line."""

from functional_nn.cli import entry_point

if __name__ == "__main__":
    entry_point()
