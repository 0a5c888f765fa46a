"""A ``cpu`` platform for verl 0.9.1, selected with ``VERL_PLATFORM=cpu``.

verl talks to the accelerator through ``get_platform()`` and through
``get_torch_device()``, which returns the platform's ``device_module``
(``torch.cuda`` on NVIDIA). On CPU there is no such module, so
``CpuDeviceModule`` stands in for it: memory, stream and cache calls are
no-ops, RNG calls go to the CPU generator.

Ray still schedules workers on logical "GPU" resources (``ray_init.num_gpus``),
so verl's placement groups work unchanged; tensors stay on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace
from typing import Any, Optional

import torch
from verl.plugin.platform.platform_base import PlatformBase

PLATFORM_NAME = "cpu"


def _host_memory() -> tuple[int, int]:
    """(available, total) bytes of host memory, from /proc/meminfo when present."""
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0]) * 1024
        return info.get("MemAvailable", info["MemFree"]), info["MemTotal"]
    except (OSError, KeyError, ValueError):
        return 0, 0


class _Event:
    """Minimal stand-in for ``torch.cuda.Event``: CPU work is synchronous."""

    def __init__(self, enable_timing: bool = False, **_: Any) -> None:
        self._time = None

    def record(self, stream=None) -> None:
        import time

        self._time = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def wait(self, stream=None) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: "_Event") -> float:
        return (end._time - self._time) * 1000.0


class _Memory:
    """Stand-in for ``torch.cuda.memory``."""

    @staticmethod
    def _set_allocator_settings(settings: str) -> None:
        pass


class _Nvtx:
    """Stand-in for ``torch.cuda.nvtx``."""

    @staticmethod
    @contextlib.contextmanager
    def range(msg: str, *args, **kwargs):
        yield

    @staticmethod
    def range_push(msg: str) -> None:
        pass

    @staticmethod
    def range_pop() -> None:
        pass


class CpuDeviceModule:
    """Answers the ``torch.cuda.*`` calls verl makes, for a process that only has a CPU."""

    memory = _Memory()
    nvtx = _Nvtx()
    Event = _Event
    Stream = torch.cpu.Stream

    # --- device --------------------------------------------------------------
    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def is_initialized() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> str:
        # verl passes this value to ``tensor.to(...)``; an int would mean ``cuda:<int>``.
        return "cpu"

    @staticmethod
    def set_device(device: Any) -> None:
        pass

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def get_device_properties(device: Any = None) -> SimpleNamespace:
        return SimpleNamespace(name="cpu", total_memory=_host_memory()[1], major=0, minor=0)

    @staticmethod
    def get_device_capability(device: Any = None) -> tuple[int, int]:
        return (0, 0)

    @staticmethod
    def synchronize(device: Any = None) -> None:
        pass

    # --- streams -------------------------------------------------------------
    @staticmethod
    def current_stream(device: Any = None):
        return torch.cpu.current_stream()

    @staticmethod
    def stream(stream: Any = None):
        return contextlib.nullcontext()

    # --- memory --------------------------------------------------------------
    @staticmethod
    def empty_cache() -> None:
        pass

    @staticmethod
    def ipc_collect() -> None:
        pass

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        return _host_memory()

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    @staticmethod
    def memory_reserved(device: Any = None) -> int:
        return 0

    @staticmethod
    def max_memory_allocated(device: Any = None) -> int:
        return 0

    @staticmethod
    def max_memory_reserved(device: Any = None) -> int:
        return 0

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        pass

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        pass

    # --- RNG: the CPU generator --------------------------------------------------
    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        torch.manual_seed(seed)

    def __getattr__(self, name: str):
        raise AttributeError(
            f"the CPU platform has no stand-in for torch.cuda.{name}; "
            "add it to verl_backend.platform_cpu.CpuDeviceModule if verl needs it"
        )


cpu_device_module = CpuDeviceModule()


class CPUPlatform(PlatformBase):
    """verl platform backed by the host CPU, process groups over gloo."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> CpuDeviceModule:
        return cpu_device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        # Only ever chosen explicitly (VERL_PLATFORM=cpu), never by auto-detection.
        return False

    def current_device(self) -> str:
        return cpu_device_module.current_device()

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: Optional[int] = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray hands out logical GPUs and sets this variable; CPU torch ignores it.
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        # Logical GPUs (ray_init.num_gpus) keep verl's GPU placement groups working.
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def host_cpu_count() -> int:
    """CPUs this process may run on (cgroup/affinity aware where possible)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
