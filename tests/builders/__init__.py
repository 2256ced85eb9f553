"""Offline builders of random-weight Hugging Face checkpoints and test data."""
