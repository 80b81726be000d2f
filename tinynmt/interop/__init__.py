"""Weights to and from PyTorch, and an independent PyTorch reference model for the tests."""
