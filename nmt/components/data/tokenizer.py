"""Subword tokenizers trained with HuggingFace ``tokenizers``: BPE (Sennrich et al. 2016) or
Unigram (Kudo 2018), SentencePiece-style whitespace handling (Metaspace) so that the
tokenizer's own decoder gives back detokenized text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from nmt.components.system import progress

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]  # ids 0..3 in every vocabulary
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


def train_tokenizer(texts: Iterable[str], *, kind: str, vocab_size: int) -> Tokenizer:
    """Train a subword model on ``texts`` (already NFC-normalised)."""
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                      show_progress=progress.bars())
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                          unk_token=UNK, show_progress=progress.bars())
    else:  # guarded by the config's Literal; kept for direct callers
        raise ValueError(f"tokenizer kind {kind!r}; valid: bpe, unigram")
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainer=trainer)
    assert [tok.token_to_id(s) for s in SPECIALS] == [PAD_ID, BOS_ID, EOS_ID, UNK_ID]
    return tok


@dataclass
class TextCodec:
    """The pair of tokenizers a model speaks (the same object twice when joint)."""

    src: Tokenizer
    tgt: Tokenizer

    @property
    def joint(self) -> bool:
        return self.src is self.tgt or self.src.to_str() == self.tgt.to_str()

    def encode_src(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.src.encode_batch(texts)]

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        """Token ids (no BOS/EOS) -> detokenized text."""
        return self.tgt.decode_batch(ids, skip_special_tokens=True)

    @classmethod
    def from_files(cls, src_path: str, tgt_path: str) -> "TextCodec":
        src = Tokenizer.from_file(str(src_path))
        tgt = src if open(src_path).read() == open(tgt_path).read() else Tokenizer.from_file(str(tgt_path))
        return cls(src, tgt)
