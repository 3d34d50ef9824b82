"""Serving: the registered translator, its REST front, request bounds and the raw-text decoding path."""
