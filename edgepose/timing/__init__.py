"""Timing primitives shared by the benchmark harness and the precision-plan search (torch-free).

:mod:`.rounds` times callables in interleaved paired rounds, :mod:`.adapters` loads a graph on a
runtime (ONNX Runtime, OpenVINO) behind one interface, and :mod:`.disturbance` is the fixed probe
workload that tells whether the machine changed speed during a round.
"""
