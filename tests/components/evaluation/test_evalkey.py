"""EvalKey: the <split>/<search>/<metric> keys evaluate logs and register, compare and the CLI read."""

import pytest

from nmt.components.evaluation.evalkey import MULTI30K_PRIMARY, PRIMARY, EvalKey, resolve_split


def test_round_trip():
    k = EvalKey("test_2016_flickr", "beam5", "bleu")
    assert k.key == "test_2016_flickr/beam5/bleu"
    assert EvalKey.parse(k.key) == k
    assert EvalKey.parse_decoded(k.decoded, "chrf") == k.with_metric("chrf")


@pytest.mark.parametrize("bad", ["val/bleu", "test_2016_flickr/greedy/bleu/x", "a//bleu", ""])
def test_a_malformed_key_is_refused_clearly(bad):
    with pytest.raises(ValueError, match="not an evaluation key <split>/<search>/<metric>"):
        EvalKey.parse(bad)
    assert not EvalKey.is_key(bad)


def test_primary_resolves_to_the_data_primary_split():
    assert resolve_split(PRIMARY, MULTI30K_PRIMARY) == MULTI30K_PRIMARY
    assert resolve_split("test_2017_mscoco", MULTI30K_PRIMARY) == "test_2017_mscoco"
