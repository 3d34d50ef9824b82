"""nmt-pipeline: Seq2Seq -> attention -> Transformer, every stage tracked.

One top-level package so that nothing of ours can collide with a host application's
own ``components`` or ``pipeline`` packages when a registered model is loaded there.
"""
