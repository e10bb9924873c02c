"""Does QAT recover what PTQ loses? PTQ against QAT variants, chosen on validation, scored on test.

For each case (zoo model, int8 target, recipe) the PTQ artifact and a set of QAT variants
(loss: labels or distillation from the fp32 model's outputs; learning rate; epochs) are exported
from the shipped checkpoint on its default dataset. Each QAT run keeps one epoch chosen on
validation (the start, i.e. the PTQ initialisation, included), and the case's QAT result is one
variant chosen the same way: by ``--select fidelity`` (closest to the fp32 outputs, the default)
or ``pck20`` (highest validation PCK@20). Reported on the clean test split against the
fp32 ONNX graph: ΔPCK@20 with a paired bootstrap 95 % interval over recordings, the recovery
``(Δ_QAT − Δ_PTQ) / −Δ_PTQ`` and the gap between the fake-quant model and the shipped int8 graph.

    python benchmarks/qat_recovery.py --cases wiflow-tiny:ort-cpu:safe,wiflow-half:tensorrt:safe \
        --device cuda --out benchmarks/results/qat-recovery
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from common import test_split, window_hits



#: name → ExportRequest QAT fields
VARIANTS = {
    "labels lr2e-5 2ep": dict(qat_loss="labels", qat_lr=2e-5, qat_epochs=2),
    "distill lr3e-5 6ep": dict(qat_loss="distill", qat_lr=3e-5, qat_epochs=6),
    "distill lr1e-4 6ep": dict(qat_loss="distill", qat_lr=1e-4, qat_epochs=6),
    "distill lr3e-4 6ep": dict(qat_loss="distill", qat_lr=3e-4, qat_epochs=6),
    "labels lr1e-4 6ep": dict(qat_loss="labels", qat_lr=1e-4, qat_epochs=6),
    "distill lr1e-4 6ep cosine": dict(qat_loss="distill", qat_lr=1e-4, qat_epochs=6, qat_schedule="cosine"),
    "distill lr3e-4 6ep cosine": dict(qat_loss="distill", qat_lr=3e-4, qat_epochs=6, qat_schedule="cosine"),
}


def run_case(model: str, target: str, recipe: str, variants: list[str], work: Path, device: str,
             deadline: float, select: str = "fidelity", save=lambda case: None, log=print) -> dict:
    from edgepose.stats import paired_bootstrap_delta
    from edgepose.exporting import ExportRequest, export
    from edgepose.runtime.session import ort_predict, ort_session

    ckpt, _data, ds, _idx, x, y, recs = test_split(model)
    torso = ds.layout.torso
    quiet = lambda s: log(f"    {s}")  # noqa: E731
    base = dict(checkpoint=ckpt, target=target, recipe=recipe, log=quiet)
    tag = f"{model}-{target}-{recipe}"
    (fp32,) = export(ExportRequest(out=work / tag / "fp32", precision="fp32", **base))
    (ptq,) = export(ExportRequest(out=work / tag / "ptq", precision="int8", **base))
    fp32_out = ort_predict(ort_session(fp32), x)
    ref = window_hits(fp32_out, y, torso)

    def test_delta(path: Path) -> dict:
        out = ort_predict(ort_session(path), x)
        # fidelity: mean joint distance to the fp32 graph's outputs (no labels, so far less noisy than ΔPCK)
        return {**paired_bootstrap_delta(window_hits(out, y, torso), ref, recs).to_dict(),
                "fidelity": float(np.linalg.norm(out - fp32_out, axis=-1).mean())}

    case = {"model": model, "target": target, "recipe": recipe, "ptq": {"file": ptq.name, "test": test_delta(ptq)},
            "variants": []}
    log(f"  {tag}: PTQ test ΔPCK@20 {case['ptq']['test']['delta_pp']:+.2f} pp")
    for name in variants:
        if time.time() > deadline:
            case.setdefault("skipped", []).append(name)
            continue
        t0 = time.perf_counter()
        out = work / tag / name.replace(" ", "_")
        (path,) = export(ExportRequest(out=out, precision="int8", method="qat", qat_device=device, qat_select=select,
                                       **base, **VARIANTS[name]))
        card = json.loads(path.with_name(path.name + ".json").read_text())
        kept = next(h for h in card["history"] if h["kept"])
        gate = card["parity"]["fake_quant_vs_onnx_int8"]
        v = {"variant": name, **VARIANTS[name], "kept_epoch": kept["epoch"], "val_pck20": kept["val_pck20"],
             "val_fidelity": kept.get("val_fidelity"), "val_fidelity_start": card["history"][0].get("val_fidelity"),
             "val_pck20_start": card["history"][0]["val_pck20"], "history": card["history"],
             "test": test_delta(path), "fake_vs_shipped_pp": 100 * (gate["candidate_pck20"] - gate["reference_pck20"]),
             "fake_vs_shipped_max_abs": gate["max_abs_error"], "seconds": time.perf_counter() - t0}
        case["variants"].append(v)
        log(f"  {tag} {name}: kept epoch {v['kept_epoch']} (val PCK@20 {100 * v['val_pck20']:.2f} % vs start "
            f"{100 * v['val_pck20_start']:.2f} %), test ΔPCK@20 {v['test']['delta_pp']:+.2f} pp, "
            f"fake vs shipped {v['fake_vs_shipped_pp']:+.2f} pp ({v['seconds']:.0f} s)")
        _choose(case, select)
        save(case)
    _choose(case, select)
    return case


def _choose(case: dict, select: str) -> None:
    """The case's QAT result: the variant best on validation by ``select``, and its test recovery."""
    if not case["variants"]:
        return
    if select == "fidelity":
        best = min(case["variants"], key=lambda v: v["val_fidelity"])
    else:
        best = max(case["variants"], key=lambda v: (round(v["val_pck20"], 9), v["kept_epoch"] == 0))
    loss = -case["ptq"]["test"]["delta_pp"]
    case["selection"] = select
    case["chosen"] = best["variant"]
    case["recovery"] = (best["test"]["delta_pp"] - case["ptq"]["test"]["delta_pp"]) / loss if loss > 0 else None
    if "fidelity" in case["ptq"]["test"] and "fidelity" in best["test"]:
        case["fidelity_recovery"] = 1.0 - best["test"]["fidelity"] / case["ptq"]["test"]["fidelity"]


def to_markdown(res: dict) -> str:
    lines = ["# QAT recovery: PTQ vs QAT variants (chosen on validation, scored on test)", "",
             f"Made by `benchmarks/qat_recovery.py` on {res['created']} ({res['device']}; torch {res['torch']}). "
             "ΔPCK@20: clean test split vs the fp32 ONNX graph, paired bootstrap 95 % CI over test recordings. "
             f"Selection: {res.get('selection', 'pck20')} — each QAT run keeps one epoch (epoch 0 = the PTQ "
             "initialisation) and the case's QAT result is one variant, both chosen on validation by that criterion "
             "(fidelity: mean joint distance to the fp32 model's outputs, lowest wins; pck20: validation PCK@20, "
             "highest wins). Recovery = (Δ_QAT − Δ_PTQ) / −Δ_PTQ. "
             "fake vs shipped: PCK@20 of the torch fake-quant model minus the exported int8 graph's, on the parity "
             "windows. Test fidelity (where recorded): mean joint distance between the int8 and fp32 graphs' "
             "outputs on the test split, a label-free and far less noisy measure of the quantization error; "
             "its recovery = 1 − fidelity_QAT / fidelity_PTQ.", ""]
    for c in res["cases"]:
        p = c["ptq"]["test"]
        lines += [f"## {c['model']}, target {c['target']}, recipe {c['recipe']}", "",
                  f"PTQ: test ΔPCK@20 {p['delta_pp']:+.2f} [{p['low_pp']:+.2f}, {p['high_pp']:+.2f}] pp"
                  + (f", test fidelity {p['fidelity']:.5f}." if "fidelity" in p else "."), "",
                  "| QAT variant | kept epoch | val PCK@20 start → kept (%) | val fidelity start → kept | "
                  "test ΔPCK@20 (pp) [95 % CI] | test fidelity | fake vs shipped (pp) |", "|---|---|---|---|---|---|---|"]
        for v in c["variants"]:
            t = v["test"]
            mark = " **(chosen)**" if v["variant"] == c.get("chosen") else ""
            fid = (f"{v['val_fidelity_start']:.5f} → {v['val_fidelity']:.5f}" if v.get("val_fidelity") is not None
                   else "–")
            lines.append(f"| {v['variant']}{mark} | {v['kept_epoch']} | {100 * v['val_pck20_start']:.2f} → "
                         f"{100 * v['val_pck20']:.2f} | {fid} | {t['delta_pp']:+.2f} [{t['low_pp']:+.2f}, "
                         f"{t['high_pp']:+.2f}] | "
                         + (f"{t['fidelity']:.5f} | " if "fidelity" in t else "– | ")
                         + f"{v['fake_vs_shipped_pp']:+.2f} |")
        if c.get("recovery") is not None:
            lines += ["", f"Recovery of the chosen variant: **{100 * c['recovery']:.0f} %** of PTQ's test loss "
                      f"(goal ≥ 75 %)."]
        if c.get("fidelity_recovery") is not None:
            lines += ["", f"Its test fidelity recovery: {100 * c['fidelity_recovery']:.0f} % of PTQ's output error "
                      "removed."]
        if c.get("skipped"):
            lines += ["", f"Not run (time limit): {', '.join(c['skipped'])}."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="wiflow-tiny:ort-cpu:safe,wiflow-half:tensorrt:safe")
    ap.add_argument("--variants", default=";".join(VARIANTS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--select", default="fidelity", choices=["fidelity", "pck20"],
                    help="how an epoch, and then a variant, is chosen on validation")
    ap.add_argument("--work", type=Path, default=Path("runs/qat-recovery"))
    ap.add_argument("--minutes", type=float, default=60.0, help="start no new QAT run after this long")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/qat-recovery"))
    ap.add_argument("--markdown-only", action="store_true")
    a = ap.parse_args()
    if a.markdown_only:
        a.out.with_suffix(".md").write_text(to_markdown(json.loads(a.out.with_suffix(".json").read_text())))
        return
    import torch

    deadline = time.time() + 60 * a.minutes
    res = {"tool": "benchmarks/qat_recovery.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "torch": torch.__version__,
           "cases": []}
    def save(case=None) -> None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        cases = res["cases"] + ([case] if case is not None and case not in res["cases"] else [])
        doc = {**res, "cases": cases}
        a.out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        a.out.with_suffix(".md").write_text(to_markdown(doc))

    res["selection"] = a.select
    for spec in [c for c in a.cases.split(",") if c]:
        model, target, recipe = spec.split(":")
        res["cases"].append(run_case(model, target, recipe, [v for v in a.variants.split(";") if v], a.work,
                                     a.device, deadline, a.select, save))
        save()
    print(to_markdown(res))


if __name__ == "__main__":
    main()
