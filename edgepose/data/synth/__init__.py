"""Physics-grounded synthetic CSI pose data written in the WiFlow layout."""

from .generate import SynthConfig, synthesize
from .motion import ACTIVITIES

__all__ = ["ACTIVITIES", "SynthConfig", "synthesize"]
