"""Reverse-mode autodiff on an explicit tape of frozen nodes."""
