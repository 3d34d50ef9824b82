"""Studies made of many runs: sweeps (Ray Tune), the journey and comparisons."""
