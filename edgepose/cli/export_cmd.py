"""``edgepose export``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import (LazyDefaultOption, RegistryChoice, batches_option, parallel_option, path_arg,
                                   request_default)
from edgepose.metrics import ACCURACY_GATE_PP


@click.command("export")
@click.argument("checkpoint", type=str)
@click.option("--precision", type=RegistryChoice("edgepose.exporting.runner", "PRECISIONS"), default="fp32",
              show_default=True)
@click.option("--method", type=RegistryChoice("edgepose.exporting.request", "METHODS"), default=None,
              help="int8 only. [default: ptq]")
@click.option("--calib", type=RegistryChoice("edgepose.quantization.calibrators", "CALIBRATORS"),
              default=request_default("calib"), show_default=True, cls=LazyDefaultOption,
              help="PTQ calibrator (QAT initialises its activation scales from it).")
@click.option("--target", type=RegistryChoice("edgepose.quantization.targets", "TARGETS"),
              default=request_default("target"), show_default=True, cls=LazyDefaultOption,
              help="int8 layout: ONNX Runtime CPU (u8/s8) or TensorRT (symmetric s8, inputs only).")
@click.option("--weight-bits", type=RegistryChoice("edgepose.quantization.targets", "WEIGHT_BITS"),
              default=request_default("weight_bits"), show_default=True, cls=LazyDefaultOption,
              help="ort-cpu int8 weight range: 7 (ISA-portable: identical integers on every x86 CPU), 8 (exact only "
                   "on CPUs with VNNI and on ARM; AVX2-only CPUs can saturate), auto (7 when this CPU lacks VNNI).")
@click.option("--recipe", type=RegistryChoice("edgepose.quantization.recipes", "RECIPES"), default=request_default("recipe"),
              show_default=True, cls=LazyDefaultOption, help="Which ops become int8. auto (default): the latency plan (as --objective "
              "latency, whole blocks): int8 only where it measures faster than fp32 at every --batch at --threads on this "
              "machine, within the accuracy gate on validation, else the fp32 graph; checked: the first of guarded, safe "
              "that is within the gate and not slower than fp32 here (no search), else the fp32 graph; guarded: attention-float with the groups that cost most accuracy on validation put back "
              "to float until it is within the gate; attention-float: all int8 but the attention blocks; safe: convs "
              "but attention q/k/v and the head; convs; global: the reference's quantize-everything.")
@click.option("--engine", is_flag=True, help="Also build a TensorRT .plan (needs the [trt] extra and a GPU).")
@click.option("--data", "data_dir", type=path_arg(), default=None,
              help="Dataset for calibration and parity [default: the checkpoint's, found by fingerprint].")
@click.option("--calib-count", type=int, default=request_default("calib_count"), show_default=True, cls=LazyDefaultOption,
              help="Calibration windows (clean training only).")
@click.option("--calib-seed", type=int, default=request_default("calib_seed"), show_default=True, cls=LazyDefaultOption)
@click.option("--qat-epochs", type=int, default=request_default("qat_epochs"), show_default=True, cls=LazyDefaultOption)
@click.option("--qat-lr", type=float, default=request_default("qat_lr"), show_default=True, cls=LazyDefaultOption)
@click.option("--qat-loss", type=RegistryChoice("edgepose.quantization.qat", "QAT_LOSSES"), default=request_default("qat_loss"),
              show_default=True, cls=LazyDefaultOption,
              help="QAT target: the labels, or the fp32 model's outputs (distillation).")
@click.option("--qat-select", type=RegistryChoice("edgepose.quantization.qat", "QAT_SELECTIONS"),
              default=request_default("qat_select"), show_default=True, cls=LazyDefaultOption,
              help="Which QAT epoch to keep (the PTQ start included): closest to the fp32 outputs on validation, "
                   "or best validation PCK@20.")
@click.option("--qat-schedule", type=RegistryChoice("edgepose.quantization.qat", "QAT_SCHEDULES"),
              default=request_default("qat_schedule"), show_default=True, cls=LazyDefaultOption,
              help="QAT learning rate: constant, or cosine decay to zero over the fine-tune.")
@click.option("--qat-device", type=click.Choice(["cpu", "cuda"]), default=request_default("qat_device"),
              show_default=True, cls=LazyDefaultOption, help="Where QAT fine-tunes.")
@click.option("--max-drop", type=float, default=request_default("max_drop"), cls=LazyDefaultOption, metavar="PP",
              help="int8 accuracy guard: everything the target runs in int8, groups put back to float (most "
                   "sensitive first) until validation PCK@20 drops at most PP percentage points.")
@click.option("--guard-strategy", type=RegistryChoice("edgepose.quantization.guard", "STRATEGIES"),
              default=request_default("guard_strategy"), show_default=True, cls=LazyDefaultOption,
              help="With --max-drop or --objective: re-measure after every restored group (linear), or bisect over how "
                   "many groups are restored (bisect: ~log2(groups) graphs; assumes restoring more never hurts). The "
                   "default int8 (auto) always bisects.")
@click.option("--guard-criterion", type=RegistryChoice("edgepose.quantization.guard", "CRITERIA"),
              default=request_default("guard_criterion"), show_default=True, cls=LazyDefaultOption,
              help="With --max-drop or --objective: judge the validation ΔPCK@20 itself (point) or the lower end of "
                   "its 95 % interval over validation recordings (lower: stricter). The default int8 (auto) always "
                   "judges lower.")
@click.option("--best-effort", is_flag=True, default=request_default("best_effort"), cls=LazyDefaultOption,
              help="With --max-drop: when no configuration meets the budget, write the closest one (the card "
                   "says so) instead of failing.")
@click.option("--objective", type=RegistryChoice("edgepose.exporting.request", "OBJECTIVES"), default=None,
              help="int8 per-layer plan: 'latency' keeps int8 only where it measures faster on this machine "
                   "(at --batch and --threads), 'size' keeps every group the accuracy guard allows; both stay "
                   f"within --max-drop (default: the accuracy gate, {ACCURACY_GATE_PP:g} pp, judged on validation).")
@click.option("--batch", "batches", default="1,64", show_default=True, callback=batches_option, metavar="B[,B…]",
              help="With --objective latency, the default int8 recipe (auto) or checked: batch sizes it must be fast at.")
@click.option("--threads", type=int, default=request_default("threads"), show_default=True, cls=LazyDefaultOption,
              help="With --objective latency, the default int8 recipe (auto) or checked: threads per timed call "
                   "(0 = the runtime's default), used as --parallel says.")
@parallel_option("How a latency plan (auto, --objective latency) or checked runs each timed call on --threads")
@click.option("--runtime", type=RegistryChoice("edgepose.timing.adapters", "ADAPTERS"),
              default=request_default("runtime"), show_default=True, cls=LazyDefaultOption,
              help="With --objective latency or the default int8 recipe (auto): the runtime the plan is measured on.")
@click.option("--search-minutes", type=float, default=request_default("search_minutes"), show_default=True,
              cls=LazyDefaultOption, help="With a latency plan (--objective latency, auto): the search's rounds end within this many minutes "
              "of the export's start (calibration and the accuracy guard come first; a round starts only when it is "
              "expected to end in time; the final check and the layout choice follow); the best plan so far is kept.")
@click.option("--search", type=click.Choice(["blocks", "full"]), default=request_default("search"), show_default=True,
              cls=LazyDefaultOption, help="With a latency plan (--objective latency, auto): flip whole blocks only (minutes), or blocks then "
              "single groups (about three times the timings: give it a longer --search-minutes, or the deadline "
              "may end it in the blocks stage; the card's notes say so).")
@click.option("--no-profile-cache", is_flag=True, help="Re-time everything instead of replaying this machine's "
              "cached measurements.")
@click.option("--pad-channels", is_flag=True, default=request_default("pad_channels"), cls=LazyDefaultOption,
              help="int8 PTQ (ort-cpu) from an exact rewrite whose TCN widths are multiples of 4 (270 → 280, 170 → 180 "
                   "in wiflow-half), so its pointwise int8 convolutions split the batch across threads. Off by default: "
                   "on the AMX box measured it did not pay end to end (docs/int8-threads.md).")
@click.option("--bias-correction", type=RegistryChoice("edgepose.exporting.request", "BIAS_CORRECTION_MODES"), default=request_default("bias_correction"),
              show_default=True, cls=LazyDefaultOption,
              help="After PTQ with a module recipe (safe, convs, global), add to every int8 convolution's bias the "
                   "mean of its fp32 − int8 output on the calibration windows, one convolution at a time in graph order "
                   "(one int8 pass per convolution; only biases change, so speed does not). 'on' ships the corrected "
                   "graph; 'checked' ships it only when its PCK@20 on the clean validation split is higher than the "
                   "plain graph's. Off by default: across the shipped zoo it helped some recipes and models and cost "
                   "others (docs/quantization.md). Refused for recipes that "
                   "choose by groups or by timing (auto, checked, guarded, attention-float), --max-drop and "
                   "--objective.")
@click.option("--range-search", type=RegistryChoice("edgepose.exporting.request", "RANGE_SEARCH_MODES"), default=None,
              help="After PTQ with a module recipe (safe, convs, global), or on the accuracy guard's starting graph "
                   "(--max-drop, where it is off by default: its factors did not transfer to the guard's other graphs): "
                   "choose each activation's int8 range by the network output, trying the calibrated "
                   "scale times 0.5, 0.7, 0.85, 1.0 and 1.2 one tensor at a time and keeping what gives the lowest "
                   "output error against fp32 on 256 calibration windows (minutes; only scales and the int32 biases "
                   "that follow them change, so speed does not). [default: on for module recipes; off for the guard and for QAT, which keeps the PTQ scales frozen] "
                   "Refused for recipes that choose by groups or by timing (auto, checked, guarded, "
                   "attention-float) and for --objective.")
@click.option("--opset", type=int, default=request_default("opset"), show_default=True, cls=LazyDefaultOption)
@click.option("--out", required=True, type=path_arg(), help="Artifact folder.")
def export_cmd(checkpoint: str, precision: str, method: str | None, calib: str, target: str, weight_bits: str, recipe: str,
               engine: bool, data_dir: Path | None, calib_count: int, calib_seed: int, qat_epochs: int,
               qat_lr: float, qat_loss: str, qat_select: str, qat_schedule: str, qat_device: str, max_drop: float | None, guard_criterion: str, guard_strategy: str, best_effort: bool, objective: str | None,
               batches: tuple[int, ...], threads: int, parallel: str, runtime: str, search_minutes: float, search: str,
               no_profile_cache: bool, pad_channels: bool, bias_correction: str, range_search: str | None, opset: int,
               out: Path) -> None:
    """Export a checkpoint to ONNX (fp32, fp16, int8 PTQ/QAT as QDQ) and optionally a TensorRT engine.

    Each artifact gets a JSON card beside it (precision, recipe, parent hash, calibration
    fingerprint, versions, parity).

    \b
    Examples:
      edgepose export models/wiflow-half.safetensors --precision int8 --out artifacts/
      edgepose export runs/half/best.safetensors --precision fp32 --out artifacts/
      edgepose export runs/half/best.safetensors --precision int8 --calib entropy --out artifacts/
      edgepose export runs/half/best.safetensors --precision int8 --method qat --out artifacts/
      edgepose export wiflow-half --precision int8 --max-drop 0.5 --out artifacts/
      edgepose export wiflow-tiny --precision int8 --max-drop 0.5 --best-effort --out artifacts/
      edgepose export wiflow-half --precision int8 --objective latency --batch 1,64 --threads 2 --out artifacts/
    """
    from edgepose.api import export

    from edgepose.quantization.recipes import get_recipe

    timed = {}
    if objective is None:
        src = click.get_current_context().get_parameter_source
        # timed here: auto (a plan) and checked, on ONNX Runtime CPU PTQ without --max-drop (which takes over)
        ptq = precision == "int8" and (method or "ptq") == "ptq" and target == "ort-cpu" and max_drop is None
        verified = ptq and bool(get_recipe(recipe).candidates)
        planned = verified and bool(get_recipe(recipe).plan) and not pad_channels  # auto: every plan option applies
        plan_only = (() if planned else ("runtime", "search_minutes", "search", "no_profile_cache")) + \
            (() if verified else ("batches", "threads", "parallel"))
        given = [f"--{n.replace('_', '-')}" for n in plan_only if src(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given).replace('--batches', '--batch')} appl"
                                   f"{'ies' if len(given) == 1 else 'y'} to latency plans only (--objective latency, "
                                   "or the default int8 recipe, auto, as PTQ for ort-cpu without --max-drop or "
                                   "--pad-channels)"
                                   + ("" if verified else "; --batch, --threads and --parallel also to --recipe checked"))
        if planned:
            timed = dict(batches=batches, threads=threads, parallel=parallel, runtime=runtime, search=search,
                         search_minutes=search_minutes, profile_cache=not no_profile_cache)
        elif verified:
            timed = dict(batches=batches, threads=threads, parallel=parallel)
    for art in export(checkpoint, precision=precision, method=method, data=data_dir, out=out, log=click.echo,
                      calib=calib, target=target, weight_bits=weight_bits, recipe=recipe, engine=engine, calib_count=calib_count,
                      calib_seed=calib_seed, qat_epochs=qat_epochs, qat_lr=qat_lr, qat_loss=qat_loss,
                      qat_select=qat_select, qat_schedule=qat_schedule, qat_device=qat_device, opset=opset,
                      max_drop=max_drop, guard_criterion=guard_criterion, guard_strategy=guard_strategy, best_effort=best_effort,
                      pad_channels=pad_channels, bias_correction=bias_correction, range_search=range_search,
                      **(dict(objective=objective, batches=batches, threads=threads, parallel=parallel, runtime=runtime, search=search,
                              search_minutes=search_minutes, profile_cache=not no_profile_cache) if objective else timed)):
        path, card = art.path, art.card
        line = f"wrote {path} ({card['bytes'] / 1e6:.2f} MB)"
        for name, p in card.get("parity", {}).items():
            extra = (f", PCK@20 {100 * p['reference_pck20']:.2f}% → {100 * p['candidate_pck20']:.2f}%"
                     if "candidate_pck20" in p else "")
            line += f"\n  parity {name}: max |Δ| {p['max_abs_error']:.2e}{extra}"
        guard = card.get("guard")
        if guard:
            test = guard["test"].get("delta_pck20_pp", float("nan"))
            line += (f"\n  guard (max drop {guard['max_drop_pp']:g} pp): {'met' if guard['met'] else 'NOT met, best effort'}"
                     f"; {len(guard['float_groups'])} group(s) float, validation ΔPCK@20 "
                     f"{guard['validation']['delta_pck20_pp']:+.2f} pp, test {test:+.2f} pp")
        plan = card.get("plan")
        if plan:
            speed = ", ".join(f"b{b} {e['speedup']:.2f}× fp32" for b, e in plan["end_to_end"].items()) or "fp32 graph"
            line += (f"\n  plan ({plan['objective']}, max drop {plan['max_drop_pp']:g} pp): "
                     f"{len(plan['int8_groups'])}/{len(plan['layers'])} groups int8, {speed}; validation ΔPCK@20 "
                     f"{plan['validation']['delta_pck20_pp']:+.2f} pp, test {plan['test']['delta_pck20_pp']:+.2f} pp")
            line += "".join(f"\n  note: {n}" for n in plan["notes"])
        click.echo(line)
