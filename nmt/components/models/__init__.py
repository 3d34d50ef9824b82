"""The journey's architectures, each a plain ``nn.Module`` behind one small interface."""
