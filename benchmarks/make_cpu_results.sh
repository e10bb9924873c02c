#!/usr/bin/env bash
# Regenerate every committed CPU result under benchmarks/results/ from one artifact folder.
#
#   benchmarks/make_cpu_results.sh ARTIFACTS DATA EXTRA
#
# ARTIFACTS holds the fp32 checkpoint (<model>.fp32.safetensors + .json) and its fp32, fp16 and
# `safe` int8 exports (what gets benched; the default int8 is `auto`, see docs/quantization.md); EXTRA holds the `global` and `convs` int8 recipes of
# the same checkpoint (profiled only); DATA is the dataset named on the checkpoint card. Each step
# prints the command it runs; benchmarks/README.md lists them too.
set -euo pipefail
A=${1:?artifact folder}
D=${2:?dataset folder}
X=${3:?folder with the global and convs int8 exports}
R=benchmarks/results
M=$(basename "$(ls "$A"/*.fp32.safetensors)" .fp32.safetensors)
FP32=$A/$M.fp32.onnx
FP16=$A/$M.fp16.onnx
INT8=$A/$M.int8-ptq-percentile-safe-ort-cpu.onnx
GLOBAL=$X/$M.int8-ptq-percentile-global-ort-cpu.onnx
CONVS=$X/$M.int8-ptq-percentile-convs-ort-cpu.onnx
BENCH=(--data "$D" --batch 1,64 --rounds 5 --warmup 5 --iters 10 --min-seconds 1)
say() { echo "+ $*" >&2; "$@"; }

say edgepose bench "$A" "${BENCH[@]}" --threads 2 --out $R/cpu.json
say edgepose bench "$A" "${BENCH[@]}" --threads 2 --out $R/cpu-repeat.json
say edgepose bench "$A" "${BENCH[@]}" --threads 1 --out $R/cpu-1t.json
say edgepose bench "$A" "${BENCH[@]}" --threads 1 --out $R/cpu-1t-repeat.json
say python3 benchmarks/paired_loop.py "$FP32" "$FP16" "$INT8" --data "$D" --threads 2 --rounds 5 \
    --calls 1=200,64=10 --out $R/paired_loop.json
say python3 benchmarks/paired_loop.py "$FP32" "$FP16" "$INT8" --data "$D" --threads 2 --rounds 5 \
    --calls 1=200,64=10 --spinning --out $R/paired_loop_spinning.json
say python3 benchmarks/paired_loop.py "$FP32" "$FP16" "$INT8" --data "$D" --threads 1 --rounds 5 \
    --calls 1=200,64=10 --out $R/paired_loop_1t.json
say python3 benchmarks/paired_loop.py "$FP32" "$INT8" "$GLOBAL" "$CONVS" --data "$D" --threads 2 --rounds 5 \
    --calls 1=200,64=10 --out $R/lever_recipes.json
say python3 benchmarks/paired_loop.py "$FP32" "$INT8" "$GLOBAL" "$CONVS" --data "$D" --threads 2 --rounds 5 \
    --calls 1=200,64=10 --opt-level extended --out $R/lever_recipes_extended.json
say python3 benchmarks/ort_profile.py "$FP32" "$INT8" "$GLOBAL" "$CONVS" --batch 64 --threads 2 --out $R/ort_profile_current.json
say edgepose bench "$A" --device cuda --data "$D" --batch 1,64 --rounds 1 --out $R/cuda.json
say edgepose report $R/cpu.json $R/cpu-1t.json $R/cuda.json --out $R/report
say python3 benchmarks/summarize.py --bench $R/cpu.json --repeat $R/cpu-repeat.json --one-thread $R/cpu-1t.json \
    --one-thread-repeat $R/cpu-1t-repeat.json \
    --loop spin-off=$R/paired_loop.json --loop spin-on=$R/paired_loop_spinning.json --loop 1-thread=$R/paired_loop_1t.json \
    --profile seed-artifacts=$R/ort_profile.json --profile current=$R/ort_profile_current.json \
    --lever "int8 recipes, opt all=$R/lever_recipes.json" --lever "int8 recipes, opt extended=$R/lever_recipes_extended.json" \
    --fx $R/reference-fx-wiflow-half.json --throughput $R/train_throughput.json \
    --reference benchmarks/reference_figures.json --out $R/summary.md
