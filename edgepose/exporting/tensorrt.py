"""TensorRT engines from strongly typed ONNX (fp16 ONNX or QDQ int8), behind an import guard."""

from __future__ import annotations

from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.exporting.onnx_fp32 import INPUT_NAME

INSTALL_HINT = ("TensorRT is not installed. On a machine with an NVIDIA GPU install the optional extra: "
                "pip install 'edgepose[trt]' (the tensorrt wheel matching your CUDA driver).")


def tensorrt_available() -> tuple[bool, str]:
    """(available, reason) — reason says what to install when it is not."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return False, f"{INSTALL_HINT} ({type(exc).__name__}: {exc})"
    return True, ""


def build_engine(onnx_path: Path, plan_path: Path, window_shape: tuple[int, int], max_batch: int = 64,
                 timing_cache: Path | None = None, workspace_mib: int = 1024) -> dict:
    """Build a strongly typed engine with a dynamic batch profile (1 … ``max_batch``)."""
    ok, reason = tensorrt_available()
    if not ok:
        raise EdgeposeError(reason)
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeposeError(f"TensorRT could not parse the ONNX graph: {errors}", onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    c, t = window_shape
    profile.set_shape(INPUT_NAME, (1, c, t), (max_batch, c, t), (max_batch, c, t))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EdgeposeError("TensorRT failed to build the engine", onnx_path)
    plan_path.write_bytes(bytes(engine))
    if timing_cache:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"tensorrt": trt.__version__, "strongly_typed": True, "profile_batch": [1, max_batch, max_batch]}


def check_tensorrt_qdq(proto) -> list[str]:
    """Rule violations of a QDQ graph for TensorRT: int8 Q/DQ must be symmetric (zero point 0)
    and per-channel weight scales must sit on axis 0. Returns the problems found (empty: OK)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    problems = []
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zp = inits.get(node.input[2]) if len(node.input) > 2 else None
            if zp is not None and (zp.dtype.kind != "i" or zp.dtype.itemsize != 1):
                problems.append(f"{node.name}: zero point type {zp.dtype}, TensorRT needs int8")
            elif zp is not None and (zp != 0).any():
                problems.append(f"{node.name}: non-zero zero point (TensorRT int8 is symmetric)")
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            scale = inits.get(node.input[1])
            if scale is not None and scale.ndim == 1 and scale.size > 1 and axis != 0:
                problems.append(f"{node.name}: per-channel axis {axis}, expected 0")
    return problems
