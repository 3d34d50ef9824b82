"""Word alignments out of subword attention, in the Pharaoh format (``i-j``: 0-indexed source
word i to target word j, on the words the user sees: the source as given, the translation
detokenized, each split at white space).

**Subwords to words.** Our tokenizers mark the start of a word with ``▁`` (Metaspace,
SentencePiece-style), so a piece that starts with it opens a new word and every other piece
continues the current one. A source word is given the attention *sum* of its pieces (the
mass on that word); a target word the *mean* of its pieces' rows (each row sums to 1). EOS
and padding belong to no word: their rows and columns are left out, so a map that piles
weight on EOS (fairseq#4446) still links real words. A target word that detokenizes to
nothing (only ``<unk>``, which decoding drops) is not a word the user sees and gets no link.

**Words to links.** Each target word is linked to the one source word with the most mass
(argmax per target word, the hard alignment of Garg et al. 2019, section 4.2): one link per
target word, none for an empty output.

Shapes: ``T`` target pieces, ``S`` source pieces, ``Wt`` / ``Ws`` target / source words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

WORD_START = "\u2581"  # ▁, Metaspace's mark of a word's first piece

Link = tuple[int, int]  # (source word, target word), 0-indexed


def word_groups(pieces: Sequence[str]) -> list[int]:
    """The 0-based word of each piece: ``▁`` opens a word (a first piece without it opens
    word 0)."""
    out, word = [], -1
    for p in pieces:
        if p.startswith(WORD_START) or word < 0:
            word += 1
        out.append(word)
    return out


def given_words(tok: Tokenizer, ids: Sequence[int]) -> list[int]:
    """The word of each of ``ids`` (an encoded text the user gave: a source, or a reference
    in forced decoding; without EOS): every group of pieces is one of the text's words,
    ``<unk>`` ones included."""
    return word_groups([tok.id_to_token(i) for i in ids])


def output_words(tok: Tokenizer, ids: Sequence[int]) -> list[int | None]:
    """The word of each of ``ids`` (a translation, without BOS/EOS) among the words of its
    detokenized text (``tok.decode(ids).split()``); None for pieces of a word that detokenizes
    to nothing."""
    groups = word_groups([tok.id_to_token(i) for i in ids])
    n = groups[-1] + 1 if groups else 0
    texts = tok.decode_batch([[i for i, g in zip(ids, groups) if g == w] for w in range(n)],
                             skip_special_tokens=True)
    visible, seen = {}, 0
    for w, text in enumerate(texts):
        if text.strip():
            visible[w] = seen
            seen += 1
    return [visible.get(g) for g in groups]


def word_matrix(attn: Tensor, src_words: Sequence[int | None], tgt_words: Sequence[int | None]) -> Tensor:
    """attn (T, S) over pieces -> (Wt, Ws) over words: sum over a source word's pieces, mean
    over a target word's rows (module docstring). Rows and columns past ``tgt_words`` /
    ``src_words`` (EOS, padding) and those mapped to None are left out."""
    T, S = len(tgt_words), len(src_words)
    a = attn[:T, :S].float().cpu().numpy()
    src_idx = np.array([-1 if w is None else w for w in src_words], dtype=np.int64)
    tgt_idx = np.array([-1 if w is None else w for w in tgt_words], dtype=np.int64)
    ks, kt = np.flatnonzero(src_idx >= 0), np.flatnonzero(tgt_idx >= 0)
    ws, wt = int(src_idx.max(initial=-1)) + 1, int(tgt_idx.max(initial=-1)) + 1
    to_src = np.zeros((S, ws), dtype=np.float32)  # (S, Ws) one-hot: a piece's word (numpy: small
    to_src[ks, src_idx[ks]] = 1.0                 # matrices, where torch's per-call cost dominates)
    to_tgt = np.zeros((wt, T), dtype=np.float32)  # (Wt, T): the mean over a word's rows
    to_tgt[tgt_idx[kt], kt] = 1.0
    to_tgt /= np.maximum(to_tgt.sum(1, keepdims=True), 1.0)
    return torch.from_numpy(to_tgt @ a @ to_src)  # (Wt, Ws)


def links(attn: Tensor, src_words: Sequence[int | None], tgt_words: Sequence[int | None]) -> set[Link]:
    """Each target word linked to its source word of most mass (module docstring)."""
    m = word_matrix(attn, src_words, tgt_words)
    if m.numel() == 0:
        return set()
    return {(i, j) for j, i in enumerate(m.argmax(1).tolist())}
