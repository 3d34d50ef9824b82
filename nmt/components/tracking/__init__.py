"""Tracking: the run store (every MLflow call), the registry, metric writers, system metrics and the names of what we write."""
