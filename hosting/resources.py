"""What the app's process and the machine use now: resident memory, the machine's memory, and GPU memory per device.

No gradio. Linux facts come from /proc (elsewhere they read as None: unknown, never a made-up number). GPU memory
comes from NVML when pynvml is installed (whole device, every process, no CUDA context needed); without it, only the
devices this process already holds memory on are asked through `torch.cuda.mem_get_info`, because asking a device
creates a CUDA context there (a few hundred MB that training jobs on that GPU would then miss).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    total_bytes: int
    used_bytes: int | None  # the whole device, every process (None: unknown without NVML or a context here)
    process_bytes: int  # reserved by this process's torch allocator


@dataclass(frozen=True)
class Resources:
    process_rss_bytes: int | None  # this process's resident memory
    total_bytes: int | None  # the machine's memory
    available_bytes: int | None  # what new work could still use without swapping (MemAvailable)
    gpus: tuple[GpuMemory, ...] = ()


def _kib_field(path: Path, key: str) -> int | None:
    """A "Key:   123 kB" line of a /proc file, in bytes."""
    try:
        for line in path.read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == key:
                return int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_rss_bytes(status: Path = Path("/proc/self/status")) -> int | None:
    return _kib_field(status, "VmRSS")


def system_memory(meminfo: Path = Path("/proc/meminfo")) -> tuple[int | None, int | None]:
    """(total, available) bytes of the machine."""
    return _kib_field(meminfo, "MemTotal"), _kib_field(meminfo, "MemAvailable")


def gpu_memory() -> tuple[GpuMemory, ...]:
    try:
        import torch
    except ImportError:
        return ()
    if not torch.cuda.is_available():
        return ()
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        mine = torch.cuda.memory_reserved(i) if torch.cuda.is_initialized() else 0
        try:
            used = torch.cuda.device_memory_used(i)  # NVML (pynvml); no context on the device
        except Exception:  # no pynvml, or no NVML (e.g. some containers): ask CUDA where a context exists already
            used = None
            if mine:
                free, total = torch.cuda.mem_get_info(i)
                used = total - free
        gpus.append(GpuMemory(i, props.name, props.total_memory, used, mine))
    return tuple(gpus)


def snapshot() -> Resources:
    total, available = system_memory()
    return Resources(process_rss_bytes(), total, available, gpu_memory())
