"""Command-line interface (``edgepose``)."""
