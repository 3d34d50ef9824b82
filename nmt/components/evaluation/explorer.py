"""The attention explorer: one self-contained HTML page (inline script and data, no network)
that shows, per test sentence, each model's output and, for the target token under the mouse
(or stepped with the arrow keys), its weights over the source side by side: Bahdanau's
alpha_ij, the Transformer's cross-attention per layer and head (or their mean), and for the
plain Seq2Seq, which has no attention, its gradient saliency, labelled as such. Below each
model, the beam's K hypotheses after that step.

Data, one entry per model: ``{"label", "kind": attention|saliency, "sentences": [{"src":
[tokens], "tgt": [tokens], "maps": {name: [[T x S]]}, "output": str, "beam": [[[tokens, logP]]]}]}``.

With a word-alignment gold set (:mod:`nmt.components.evaluation.goldset`), each page sentence
also holds ``"gold": {"sure": [[i, j]], "possible": [[i, j]]}`` (source word i, target word j)
and each model's sentence ``"src_words"`` / ``"tgt_words"`` (the word of each token, null for
EOS); for the target token under the mouse, the page frames the source tokens of a gold link
of its word: solid green for sure, dashed for possible (``data-gold`` on the cell).
"""

from __future__ import annotations

import json

import numpy as np

MAP_MEAN = "mean of heads, last layer"


def map_set(weights: np.ndarray) -> dict[str, list[list[float]]]:
    """weights (T, S), or the Transformer's (L, nh, T, S) -> named (T, S) maps, rounded."""
    r = lambda w: np.round(w.astype(float), 3).tolist()  # noqa: E731
    if weights.ndim == 2:
        return {"alpha": r(weights)}
    maps = {MAP_MEAN: r(weights[-1].mean(0))}
    for layer in range(weights.shape[0]):
        for head in range(weights.shape[1]):
            maps[f"layer {layer + 1} head {head + 1}"] = r(weights[layer, head])
    return maps


def render(models: list[dict], sentences: list[dict]) -> str:
    """The page: ``sentences`` [{"src": text, "ref": text}], ``models`` as in the module doc."""
    data = json.dumps({"models": models, "sentences": sentences}, ensure_ascii=False).replace("</", "<\\/")
    return PAGE.replace("__DATA__", data)


PAGE = """<!doctype html><html><head><meta charset=utf-8><title>nmt attention explorer</title><style>
body{font-family:sans-serif;margin:1em 2em}.models{display:flex;gap:16px;flex-wrap:wrap}
.model{border:1px solid #ccc;padding:8px;flex:1;min-width:320px}.tok{display:inline-block;padding:2px 4px;margin:1px;
border:1px solid #ddd;cursor:pointer;font-size:13px}.tok.on{outline:2px solid #c00}.src .tok{cursor:default}
.tok.gold-sure{outline:3px solid #1a9e1a}.tok.gold-possible{outline:3px dashed #1a9e1a}.kind{font-size:12px;color:#555}.out{word-break:break-all}.beam{font-size:12px;font-family:monospace;white-space:pre}h3{margin:4px 0}
</style></head><body><h1>Attention explorer</h1>
<p>Pick a sentence; hover a target token (or use the arrow keys) to see each model's weights over the source:
dark = high. Rows of attention sum to 1; saliency is scaled to its largest value.</p>
<label>sentence <select id=pick></select></label> <span id=step></span>
<p id=ref></p><p id=legend class=kind></p><div class=models id=models></div>
<script>
const D = __DATA__;
let sent = 0, t = 0;
const h = /s=(\\d+).*t=(\\d+)/.exec(location.hash);  // #s=1&t=2: a sentence and step to open at
if (h) { sent = +h[1]; t = +h[2]; }
const pick = document.getElementById('pick');
D.sentences.forEach((s, i) => { const o = document.createElement('option'); o.value = i;
  o.textContent = (i + 1) + '. ' + s.src; pick.appendChild(o); });
pick.value = sent;
pick.onchange = () => { sent = +pick.value; t = 0; draw(); };
document.onkeydown = e => { if (e.key === 'ArrowRight') { t++; draw(); } if (e.key === 'ArrowLeft') { t = Math.max(0, t - 1); draw(); } };
// goldMark:begin
function goldMark(gold, i, j) {  // the gold link of source word i and target word j: 'sure', 'possible' or ''
  if (!gold || i === null || i === undefined || j === null || j === undefined) return '';
  const has = links => links.some(l => l[0] === i && l[1] === j);
  return has(gold.sure) ? 'sure' : has(gold.possible) ? 'possible' : '';
}
// goldMark:end
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text; return e; }
function draw() {
  const root = document.getElementById('models'); root.innerHTML = '';
  document.getElementById('ref').textContent = 'reference: ' + D.sentences[sent].ref;
  document.getElementById('step').textContent = 'target step ' + (t + 1);
  const gold = D.sentences[sent].gold;
  document.getElementById('legend').textContent = gold ? 'gold links of the target word under the mouse: ' +
    'solid green frame = sure, dashed = possible (human alignment; forced decoding on the reference)' : '';
  D.models.forEach((m, mi) => {
    const s = m.sentences[sent]; if (!s) return;
    const box = el('div', 'model'); box.dataset.model = m.label; root.appendChild(box);
    box.appendChild(el('h3', null, m.label));
    box.appendChild(el('div', 'kind', m.kind === 'saliency' ?
      'no attention (one fixed context vector): gradient saliency |d log p(y_t)/d e(x_s)|, not attention' :
      'attention weights over the source'));
    box.appendChild(el('p', 'out', 'output: ' + s.output));
    const names = Object.keys(s.maps); const sel = el('select', 'map');
    names.forEach(n => { const o = el('option', null, n); o.value = n; sel.appendChild(o); });
    sel.value = box.dataset.map = (m.chosen && names.includes(m.chosen)) ? m.chosen : names[0];
    sel.onchange = () => { m.chosen = sel.value; draw(); };
    if (names.length > 1) box.appendChild(sel);
    const tt = Math.min(t, s.tgt.length - 1), w = s.maps[sel.value][tt] || [];
    const top = Math.max(...w, 1e-9), scale = m.kind === 'saliency' ? top : 1;
    const src = el('div', 'src'); box.appendChild(el('div', 'kind', 'source'));
    s.src.forEach((tok, j) => { const c = el('span', 'tok cell', tok); const v = (w[j] || 0) / scale;
      c.dataset.weight = (w[j] || 0).toFixed(3); c.title = c.dataset.weight;
      c.style.background = 'rgba(0,0,0,' + v.toFixed(3) + ')'; c.style.color = v > 0.5 ? '#fff' : '#000';
      const g = s.tgt_words ? goldMark(gold, s.src_words[j], s.tgt_words[tt]) : '';
      if (g) { c.classList.add('gold-' + g); c.dataset.gold = g; }
      src.appendChild(c); });
    box.appendChild(src); box.appendChild(el('div', 'kind', 'target (hover)'));
    const tgt = el('div', 'tgt');
    s.tgt.forEach((tok, i) => { const c = el('span', 'tok' + (i === tt ? ' on' : ''), tok);
      c.onmouseenter = () => { t = i; draw(); }; tgt.appendChild(c); });
    box.appendChild(tgt);
    const beam = s.beam[Math.min(t, s.beam.length - 1)] || [];
    box.appendChild(el('div', 'kind', 'beam after step ' + (t + 1) + ' (log P)'));
    box.appendChild(el('div', 'beam', beam.map(h => h[1].toFixed(2) + '  ' + h[0].join(' ')).join('\\n')));
  });
}
draw();
</script></body></html>
"""
