"""Physics-grounded synthetic CSI pose data, written in the WiFlow (default) or MM-Fi layout."""

from edgepose.data.synth.generate import LAYOUTS, SynthConfig, default_config, synthesize
from edgepose.data.synth.motion import ACTIVITIES

__all__ = ["ACTIVITIES", "LAYOUTS", "SynthConfig", "default_config", "synthesize"]
