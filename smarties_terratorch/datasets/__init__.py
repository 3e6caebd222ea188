"""Dataset readers: torch ``Dataset``s that read pixels through :mod:`smarties_terratorch.io`."""
