"""The torch-free part of edgepose: ONNX Runtime sessions and CPU facts (numpy + onnxruntime only).

Nothing under ``edgepose.runtime`` may import torch, onnx, click, matplotlib or scipy: an edge box
runs it with only numpy and onnxruntime installed.
"""
