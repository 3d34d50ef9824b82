"""``nmt sweep``: Ray Tune over the same Lightning training as the train stage."""
