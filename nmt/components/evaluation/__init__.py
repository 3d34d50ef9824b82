"""Evaluation: sacreBLEU scores, significance, analyses, saliency, figures and the attention explorer."""
