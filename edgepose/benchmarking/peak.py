"""The machine's arithmetic limit: peak multiply-accumulates per second for fp32 and int8.

    peak MAC/s = cores × clock × (vector bits per cycle per core / element bits) × MACs per lane-op

* *cores*: physical cores (SMT siblings share the vector units), capped at the threads a run uses;
* *clock*: the highest frequency the OS reports (``cpuinfo_max_freq``, else ``cpu MHz``);
* *vector bits per cycle per core*: the widest vector ISA in the CPU flags times the FMA issue
  rate assumed for it (see :data:`ISAS`);
* fp32: one FMA per 32-bit lane (MAC per lane-op 1); int8 with VNNI (``vpdpbusd``): four u8·s8
  products into each 32-bit lane per instruction, i.e. one MAC per 8-bit lane; int8 on AVX2
  without VNNI needs a multiply-add pair plus a widening add (``vpmaddubsw`` + ``vpmaddwd``)
  for the same work, counted as half that rate.

It is a *paper* peak: the ceiling no kernel exceeds, used to say how far an artifact is from
what the box could do, not a promise that any kernel reaches it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from edgepose.runtime.cpu import cpu_flags


@dataclass(frozen=True)
class Isa:
    """One vector instruction set: what flags show it and how many bits of FMA it retires a cycle."""

    name: str
    needs: frozenset[str]
    bits_per_cycle: int     # vector bits of FMA work per cycle per core
    int8_macs_per_byte_lane: float   # int8 MACs per 8-bit lane per cycle (VNNI 1, else 0.5)
    note: str


#: Widest first; the first whose flags are all present is this machine's.
ISAS: tuple[Isa, ...] = (
    Isa("avx512-vnni", frozenset({"avx512f", "avx512_vnni"}), 512, 1.0,
        "AVX-512 with VNNI; 512 bits of FMA per cycle (one 512-bit unit, or two 256-bit halves as on AMD Zen 4; "
        "Intel parts with two 512-bit FMA units reach twice this)"),
    Isa("avx512", frozenset({"avx512f"}), 512, 0.5, "AVX-512 without VNNI"),
    Isa("avx2-vnni", frozenset({"avx2", "fma", "avx_vnni"}), 512, 1.0, "AVX2 + AVX-VNNI, two 256-bit FMA units"),
    Isa("avx2", frozenset({"avx2", "fma"}), 512, 0.5, "AVX2 + FMA, two 256-bit FMA units"),
    Isa("neon-dot", frozenset({"asimd", "asimddp"}), 256, 1.0, "Arm NEON with dot product, two 128-bit units"),
    Isa("neon", frozenset({"asimd"}), 256, 0.5, "Arm NEON, two 128-bit units"),
    Isa("sse", frozenset(), 128, 0.5, "no FMA vector flags recognised: 128 bits per cycle assumed"),
)


@dataclass(frozen=True)
class Peak:
    """Peak MAC rates of this machine and how they were derived."""

    isa: str
    isa_note: str
    physical_cores: int
    clock_ghz: float
    clock_source: str
    bits_per_cycle: int
    fp32_gmacs_per_core: float
    int8_gmacs_per_core: float

    def gmacs(self, precision: str, threads: int = 0) -> float:
        """Peak GMAC/s for ``precision`` using ``threads`` cores (0 = all of them).

        fp16 on a CPU without fp16 FMA runs on the fp32 units, so it gets the fp32 peak.
        """
        cores = self.physical_cores if not threads else min(threads, self.physical_cores)
        per_core = self.int8_gmacs_per_core if precision == "int8" else self.fp32_gmacs_per_core
        return cores * per_core

    def to_dict(self, threads: int = 0) -> dict:
        d = asdict(self)
        d["formula"] = "cores × clock × (vector bits per cycle / element bits) × MACs per lane"
        d["fp32_gmacs"] = self.gmacs("fp32")
        d["int8_gmacs"] = self.gmacs("int8")
        d["threads"] = threads or self.physical_cores
        d["fp32_gmacs_at_threads"] = self.gmacs("fp32", threads)
        d["int8_gmacs_at_threads"] = self.gmacs("int8", threads)
        return d


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def physical_cores() -> int:
    """Distinct (package, core) pairs in ``/proc/cpuinfo``; the logical count when it does not say."""
    pairs, phys = set(), None
    for line in _cpuinfo():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            pairs.add((phys, value.strip()))
    return len(pairs) or os.cpu_count() or 1


def clock_ghz() -> tuple[float, str]:
    """Highest clock the OS reports, and where the figure came from."""
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(max_freq.read_text()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    mhz = [float(line.split(":", 1)[1]) for line in _cpuinfo() if line.startswith("cpu MHz")]
    if mhz:
        return max(mhz) / 1e3, "/proc/cpuinfo cpu MHz (no cpufreq: the nominal clock, boost not visible)"
    return 0.0, "unknown"


def machine_isa(flags: frozenset[str] | None = None) -> Isa:
    """The widest :data:`ISAS` entry this CPU's flags support."""
    flags = cpu_flags() if flags is None else flags
    return next(isa for isa in ISAS if isa.needs <= flags)


def machine_peak(flags: frozenset[str] | None = None, cores: int | None = None, ghz: float | None = None) -> Peak:
    """Peak fp32 and int8 MAC rates of this machine (arguments override what the OS reports)."""
    isa = machine_isa(flags)
    if ghz is None:
        ghz, source = clock_ghz()
    else:
        source = "given"
    cores = cores or physical_cores()
    fp32 = ghz * isa.bits_per_cycle / 32
    int8 = ghz * isa.bits_per_cycle / 8 * isa.int8_macs_per_byte_lane
    return Peak(isa.name, isa.note, cores, round(ghz, 4), source, isa.bits_per_cycle, fp32, int8)


def achieved(macs_per_window: int | None, batch: int, p50_ms: float, peak_gmacs: float) -> dict:
    """Achieved GMAC/s at one batch size, the fraction of peak and the time floor the peak implies."""
    if not macs_per_window or not p50_ms or not peak_gmacs:
        return {}
    gmac = macs_per_window * batch / 1e9
    rate = gmac / (p50_ms / 1e3)
    floor_ms = gmac / peak_gmacs * 1e3
    return {"gmacs_per_s": rate, "peak_gmacs_per_s": peak_gmacs, "fraction_of_peak": rate / peak_gmacs,
            "floor_ms": floor_ms, "x_floor": p50_ms / floor_ms}
