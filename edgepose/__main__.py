"""``python -m edgepose`` (what ``torchrun -m edgepose train …`` runs)."""

from edgepose.cli.main import main

main()
