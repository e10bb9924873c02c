"""Physics-grounded synthetic CSI pose data, written in the WiFlow (default) or MM-Fi layout."""

from .generate import LAYOUTS, SynthConfig, default_config, synthesize
from .motion import ACTIVITIES

__all__ = ["ACTIVITIES", "LAYOUTS", "SynthConfig", "default_config", "synthesize"]
