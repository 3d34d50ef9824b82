"""The key of one test score: ``<split>/<search>/<metric>``, e.g. ``test_2016_flickr/beam5/bleu``.
evaluate logs its scores under these keys; register, compare and the CLI read them back."""

from __future__ import annotations

from dataclasses import dataclass

PRIMARY = "primary"                    # the config word for data.primary_test_split
MULTI30K_PRIMARY = "test_2016_flickr"  # Multi30k's primary test split, scored first by every older run


def resolve_split(split: str, primary: str) -> str:
    """A configured split name with the word ``primary`` replaced by the data's primary split."""
    return primary if split == PRIMARY else split


@dataclass(frozen=True)
class EvalKey:
    split: str   # a test split, e.g. test_2016_flickr
    search: str  # greedy, or beam<k>
    metric: str  # bleu, chrf, ter

    @property
    def key(self) -> str:
        return f"{self.split}/{self.search}/{self.metric}"

    @property
    def decoded(self) -> str:
        """``<split>/<search>``: which hypotheses were scored (evaluate's analysis.split tag)."""
        return f"{self.split}/{self.search}"

    def with_metric(self, metric: str) -> EvalKey:
        return EvalKey(self.split, self.search, metric)

    @classmethod
    def parse(cls, key: str) -> EvalKey:
        """The inverse of ``.key``; ValueError for anything else."""
        parts = key.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{key!r} is not an evaluation key <split>/<search>/<metric>")
        return cls(*parts)

    @classmethod
    def parse_decoded(cls, decoded: str, metric: str) -> EvalKey:
        """The inverse of ``.decoded``, with ``metric`` added."""
        return cls.parse(f"{decoded}/{metric}")

    @staticmethod
    def is_key(key: str) -> bool:
        """Whether a logged metric's name is an evaluation key (evaluate also logs others)."""
        try:
            EvalKey.parse(key)
        except ValueError:
            return False
        return True
