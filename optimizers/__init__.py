"""Pure optimizers that return new parameter and state maps."""
