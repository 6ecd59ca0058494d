"""What this CPU can do, read from its flags and from OpenVINO, never assumed."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache

# The flags the precision policy cares about, as Linux names them in /proc/cpuinfo.
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx_vnni", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
                     "amx_int8")


@dataclass(frozen=True)
class Hardware:
    cpu_model: str
    cores: int
    flags: frozenset[str]
    openvino_version: str | None = None
    openvino_devices: tuple[str, ...] = ()
    openvino_capabilities: tuple[str, ...] = ()  # CPU OPTIMIZATION_CAPABILITIES, e.g. FP32, INT8, BF16
    notes: tuple[str, ...] = field(default=())

    @property
    def amx(self) -> bool:
        return {"amx_bf16", "amx_int8"} <= self.flags

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags)

    @property
    def native_bf16(self) -> bool:
        """BF16 arithmetic in hardware (AVX-512 BF16 or AMX), not emulated."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def isa_summary(self) -> str:
        if self.amx:
            return "AMX (BF16 + INT8 tiles)"
        if "avx512_bf16" in self.flags:
            return "AVX-512 BF16 + VNNI"
        if "avx512_vnni" in self.flags:
            return "AVX-512 VNNI"
        if "avx_vnni" in self.flags:
            return "AVX-VNNI"
        if "avx2" in self.flags:
            return "AVX2 only"
        return "baseline x86/other"


def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, frozenset(flags)


@lru_cache(maxsize=1)
def probe() -> Hardware:
    model, flags = _cpuinfo()
    notes: list[str] = []
    ov_version, devices, caps = None, (), ()
    try:
        import openvino as ov

        core = ov.Core()
        ov_version = ov.get_version()
        devices = tuple(core.available_devices)
        caps = tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as exc:  # doctor must still report the CPU when OpenVINO is broken
        notes.append(f"OpenVINO unavailable: {exc}")
    return Hardware(cpu_model=model, cores=len(os.sched_getaffinity(0)), flags=flags & set(FLAGS_OF_INTEREST),
                    openvino_version=ov_version, openvino_devices=devices, openvino_capabilities=caps,
                    notes=tuple(notes))


def package_version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None
