"""Decoding: greedy and beam search over the models' small interface.

The decoding budget's defaults are written here once, torch-free (serving's request bounds
read them before torch loads): a translation is at most ``LEN_RATIO`` x its longest source's
tokens + ``LEN_EXTRA``, and beams are ranked with GNMT's length penalty."""

LEN_RATIO = 1.5        # target tokens per source token, at most
LEN_EXTRA = 10         # and this many more
LENGTH_PENALTY = 0.6   # alpha of lp(Y) = ((5 + |Y|) / 6)^alpha, Wu et al. 2016 (GNMT)
