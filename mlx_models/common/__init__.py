"""Primitives shared by the model families: config parsing, weight files, quantization, errors."""
