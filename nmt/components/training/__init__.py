"""Training: the LightningModule, its callbacks, checkpoint averaging, devices and precision, start-up marks."""
