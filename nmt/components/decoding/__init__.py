"""Decoding: greedy and beam search over the models' small interface."""
