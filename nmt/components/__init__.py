"""Reusable building blocks: data, models, decoding, metrics and tracking helpers."""
