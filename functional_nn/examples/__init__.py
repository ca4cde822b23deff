"""Runnable examples of the library: ``python -m functional_nn.examples.char_model``."""
