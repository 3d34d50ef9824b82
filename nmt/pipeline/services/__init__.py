"""The team's services: the MLflow tracking server and a Ray cluster on one machine."""
