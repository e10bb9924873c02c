"""edgepose: take a WiFi-CSI pose network from training to a measured, deployable edge artifact."""

__version__ = "0.1.0"
