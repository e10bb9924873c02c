"""Backends that run artifacts, behind one registry; each says why it cannot run when it cannot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgepose.benchmarking.artifacts import ArtifactFile


@dataclass
class Runner:
    """A loaded artifact: ``predict`` for accuracy, ``prepare`` + ``sync`` for timing."""

    predict: Callable[[np.ndarray], np.ndarray]
    prepare: Callable[[np.ndarray], Callable[[], None]]  # binds an input once, returns the timed call
    sync: Callable[[], None]


def _noop() -> None:
    return None


class Backend:
    """Base: a name, the device it runs on, what it accepts and how it loads."""

    name = "abstract"
    device = "cpu"
    #: whether ``load(..., parallel="batch")`` shards a call's windows (else it runs ``intra``)
    shards = False

    def available(self) -> tuple[bool, str]:
        return True, ""

    def accepts(self, art: ArtifactFile) -> bool:
        raise NotImplementedError

    def load(self, art: ArtifactFile, threads: int, spinning: bool | None = None, parallel: str = "intra") -> Runner:
        """Load ``art`` to run on ``threads`` cores; ``spinning`` applies to thread pools that spin,
        ``parallel`` (:data:`edgepose.runtime.parallel.PARALLEL_MODES`) to backends that can shard a batch
        (ONNX Runtime on the CPU); the others run ``intra`` whatever it says."""
        raise NotImplementedError


class TorchEager(Backend):
    """The fp32 reference: the checkpoint in eager PyTorch."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.name = f"torch-{device}"

    def available(self):
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            return False, "no CUDA GPU visible to torch"
        return True, ""

    def accepts(self, art):
        return art.kind == "torch"

    def load(self, art, threads, spinning=None, parallel="intra"):
        import torch

        from edgepose.training.checkpoint import load_checkpoint

        if threads and self.device == "cpu":
            torch.set_num_threads(threads)
        model, _ = load_checkpoint(art.path)
        dev = torch.device("cuda" if self.device == "cuda" else "cpu")
        model = model.to(dev).eval()

        @torch.inference_mode()
        def predict(x):
            return model(torch.from_numpy(np.ascontiguousarray(x)).to(dev)).float().cpu().numpy()

        def prepare(x):
            t = torch.from_numpy(np.ascontiguousarray(x)).to(dev)

            @torch.inference_mode()
            def call():
                model(t)

            return call

        sync = torch.cuda.synchronize if self.device == "cuda" else _noop
        return Runner(predict, prepare, sync)


class OrtBackend(Backend):
    """ONNX Runtime with one execution provider."""

    PROVIDERS = {"ort-cpu": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider",
                 "ort-trt": "TensorrtExecutionProvider"}

    def __init__(self, name: str) -> None:
        self.name = name
        self.provider = self.PROVIDERS[name]
        self.device = "cpu" if name == "ort-cpu" else "cuda"
        self.shards = self.device == "cpu"

    def available(self):
        import onnxruntime as ort

        if self.provider not in ort.get_available_providers():
            return False, (f"{self.provider} not in this onnxruntime build "
                           f"(available: {', '.join(ort.get_available_providers())}); "
                           + ("install onnxruntime-gpu" if self.device == "cuda" else ""))
        return True, ""

    def accepts(self, art):
        return art.kind == "onnx"

    def load(self, art, threads, spinning=None, parallel="intra"):
        from edgepose.runtime.session import OrtRunner, ort_predict

        providers = [self.provider] + (["CPUExecutionProvider"] if self.provider != "CPUExecutionProvider" else [])
        runner = OrtRunner(art.path, threads=threads if self.device == "cpu" else 0, providers=providers,
                           spinning=spinning, parallel=parallel)  # a GPU provider first runs intra
        return Runner(lambda x: ort_predict(runner, x), runner.bind, _noop)


class TensorRTNative(Backend):
    """A serialized TensorRT engine run through the ``tensorrt`` Python API with torch CUDA buffers."""

    name = "tensorrt"
    device = "cuda"

    def available(self):
        from edgepose.exporting.tensorrt import tensorrt_available

        ok, reason = tensorrt_available()
        if not ok:
            return ok, reason
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA GPU visible to torch (buffers are torch CUDA tensors)"
        return True, ""

    def accepts(self, art):
        return art.kind == "plan"

    def load(self, art, threads, spinning=None, parallel="intra"):
        import tensorrt as trt
        import torch

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(art.path.read_bytes())
        ctx = engine.create_execution_context()
        stream = torch.cuda.Stream()
        joints = art.card["joints"]

        def bind(x_gpu):
            ctx.set_input_shape("csi", tuple(x_gpu.shape))
            out = torch.empty((x_gpu.shape[0], joints, 2), device="cuda", dtype=torch.float32)
            ctx.set_tensor_address("csi", x_gpu.data_ptr())
            ctx.set_tensor_address("keypoints", out.data_ptr())
            return out

        def predict(x):
            outs = []
            for i in range(0, len(x), 64):
                xg = torch.from_numpy(np.ascontiguousarray(x[i : i + 64])).cuda()
                out = bind(xg)
                ctx.execute_async_v3(stream.cuda_stream)
                stream.synchronize()
                outs.append(out.cpu().numpy())
            return np.concatenate(outs)

        def prepare(x):
            xg = torch.from_numpy(np.ascontiguousarray(x)).cuda()
            holder = {"out": bind(xg), "x": xg}

            def call():
                ctx.execute_async_v3(stream.cuda_stream)

            call.holder = holder  # keep buffers alive
            return call

        return Runner(predict, prepare, stream.synchronize)


#: The registry: device → factories of the backends that run on it, in reporting order.
BACKENDS: dict[str, tuple[Callable[[], Backend], ...]] = {
    "cpu": (lambda: TorchEager("cpu"), lambda: OrtBackend("ort-cpu")),
    "cuda": (lambda: TorchEager("cuda"), lambda: OrtBackend("ort-cuda"), lambda: OrtBackend("ort-trt"),
             TensorRTNative),
}


def backends_for(device: str) -> list[Backend]:
    """Every backend that runs on ``device``."""
    if device not in BACKENDS:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(BACKENDS)}")
    return [make() for make in BACKENDS[device]]
