"""Hydra configs for PANGAEA (``hydra.searchpath=[pkg://smarties_terratorch.pangaea.configs]``)."""
