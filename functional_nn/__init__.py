"""Pure model functions over persistent parameter maps."""
