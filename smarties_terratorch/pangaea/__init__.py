"""SMARTIES for the PANGAEA benchmark (``pangaea-bench``).

:class:`SmartiesEncoder` fulfils PANGAEA's encoder contract; the Hydra configs ``encoder/smarties_vitb.yaml`` and
``encoder/smarties_vitl.yaml`` ship in this package, so PANGAEA finds them with
``hydra.searchpath=[pkg://smarties_terratorch.pangaea.configs]`` (no edit of PANGAEA needed).
"""

from .encoder import PANGAEA_AVAILABLE, BandPlan, SmartiesEncoder, plan_bands

__all__ = ["CONFIG_SEARCH_PATH", "PANGAEA_AVAILABLE", "BandPlan", "SmartiesEncoder", "plan_bands"]

#: Value for PANGAEA's ``hydra.searchpath`` that makes ``encoder=smarties_vitb|smarties_vitl`` resolve.
CONFIG_SEARCH_PATH = "pkg://smarties_terratorch.pangaea.configs"
