"""One module per stage: ``run_<stage>(cfg, ...) -> <Stage>Outputs``."""
