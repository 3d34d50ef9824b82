import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nmt.components.evaluation.figures import bleu_by_length, bucket_label, bucket_labels, sample_attention
from nmt.components.data.tokenizer import TextCodec, train_tokenizer
from nmt.components.evaluation.plots import attention_heatmap, head_grid
from nmt.pipeline.stages.evaluate import metric_name, searches
from tests.conftest import tiny_net


def test_bucket_edges():
    assert [bucket_label(n) for n in (1, 10, 11, 15, 16, 25, 26, 80)] == \
        ["1-10", "1-10", "11-15", "11-15", "16-20", "21-25", ">25", ">25"]
    assert bucket_labels() == ["1-10", "11-15", "16-20", "21-25", ">25"]


def test_bleu_by_length_groups_hand_made_sentences():
    short, long_ = 2, 12                                  # source tokens
    refs = ["a dog runs in the park today", "the man is riding a red bike down the hill", "a cat"]
    hyps = [refs[0], "completely different words here and there", "a cat"]
    scores = {s.bucket: s for s in bleu_by_length([short, long_, short], hyps, refs)}
    assert scores["1-10"].sentences == 2 and scores["11-15"].sentences == 1
    assert scores["1-10"].bleu == pytest.approx(100.0)    # both short hypotheses are exact
    assert scores["11-15"].bleu < 5
    assert scores[">25"].sentences == 0 and scores[">25"].bleu is None
    with pytest.raises(ValueError, match="3 sources, 2 hypotheses"):
        bleu_by_length([short] * 3, hyps[:2], refs)


def test_bleu_by_length_scores_chinese_with_its_tokenizer():
    hyps, refs = ["一只狗在公园里跑。"], ["一只小狗在公园里跑。"]
    assert bleu_by_length([9], hyps, refs)[0].bleu == 0.0            # 13a: one "word" each
    assert bleu_by_length([9], hyps, refs, tokenize="zh")[0].bleu == pytest.approx(71.89, abs=0.01)


def test_heatmap_axes_match_token_counts():
    w = np.random.default_rng(0).random((4, 6))
    fig = attention_heatmap(w / w.sum(1, keepdims=True), list("abcdef"), list("wxyz"), "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdef")
    assert [t.get_text() for t in ax.get_yticklabels()] == list("wxyz")
    plt.close(fig)
    with pytest.raises(ValueError, match="target x"):
        attention_heatmap(w, list("abc"), list("wxyz"), "t")
    grid = head_grid(np.stack([w, w, w]), list("abcdef"), list("wxyz"), "heads")
    assert sum(1 for a in grid.axes if a.images) == 3
    plt.close(grid)


@pytest.mark.parametrize("arch, extra, ndim", [("attention", {"emb_dim": 8, "enc_hidden_dim": 6, "dec_hidden_dim": 10,
                                                              "attn_dim": 7}, 2),
                                               ("transformer", {"d_model": 12, "num_heads": 3, "ff_dim": 20,
                                                                "num_encoder_layers": 2, "num_decoder_layers": 2}, 4),
                                               ("seq2seq", {"emb_dim": 8, "hidden_dim": 9}, 2)])
def test_sample_attention_shapes_follow_the_sentence(arch, extra, ndim):
    texts = ["ein Hund läuft im Park", "a dog runs in the park", "zwei Katzen", "two cats"]
    tok = train_tokenizer(texts * 5, kind="bpe", vocab_size=60)
    codec = TextCodec(tok, tok)
    torch.manual_seed(0)
    model = tiny_net({"arch": arch, **extra}, tok.get_vocab_size(), tok.get_vocab_size(), shared=True).eval()
    src_t, tgt_t, w, kind = sample_attention(model, codec, "ein Hund läuft")
    assert kind == ("saliency" if arch == "seq2seq" else "attention")  # no alpha in a plain Seq2Seq
    assert src_t[-1] == "</s>" and len(src_t) == len(tok.encode("ein Hund läuft").ids) + 1
    assert w.ndim == ndim and w.shape[-2:] == (len(tgt_t), len(src_t))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_metric_names_are_stable():
    assert [s for s, _ in searches(5)] == ["greedy", "beam5"]
    assert [s for s, _ in searches(1)] == ["greedy"]
    assert metric_name("test_2016_flickr", "beam5", "bleu") == "test_2016_flickr/beam5/bleu"
