"""GPU energy from NVML's cumulative counter, and the published energy figures put back in joules.

NVML keeps, per GPU, the energy used since the driver was loaded
(``nvmlDeviceGetTotalEnergyConsumption``, millijoules). The difference of two readings is the
energy of the window between them. The counter moves in steps of some tens of milliseconds, so
windows shorter than about a second are dominated by that step;
:func:`widthprune.efficiency.run_window` repeats a workload until the window is long enough.
Without a GPU or without NVML every figure is NaN with a reason, never 0.
"""

from __future__ import annotations

import time

import pandas as pd

__all__ = [
    "CODECARBON_GRID_FACTOR",
    "EnergyMeter",
    "correct_published_energy",
    "relative_energy",
]

# The published "kWh" are CodeCarbon's kg CO2-eq: the true energy times this grid factor.
CODECARBON_GRID_FACTOR = 0.3492


class EnergyMeter:
    """Reads a GPU's cumulative energy counter; degrades to ``available=False`` with a reason.

    Args:
        device_index: NVML index of the GPU (the CUDA index when CUDA_VISIBLE_DEVICES is unset);
            ``None`` for a run without a GPU (every figure NaN, with that reason).

    Attributes:
        available: True when the counter can be read.
        reason: why it cannot ("" when it can).
        gpu_name: the GPU's name as NVML reports it, or "".
        driver: the driver version, or "".
    """

    def __init__(self, device_index: int | None = 0):
        self.available, self.reason, self.gpu_name, self.driver = False, "", "", ""
        self._nvml = self._handle = None
        if device_index is None:
            self.reason = "no GPU: energy is measured on NVIDIA GPUs only"
            return
        try:
            import pynvml
        except ImportError as err:
            self.reason = f"nvidia-ml-py is not installed ({err})"
            return
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # raises where unsupported
            name = pynvml.nvmlDeviceGetName(handle)
            driver = pynvml.nvmlSystemGetDriverVersion()
        except Exception as err:  # NVMLError subclasses, or a missing libnvidia-ml
            self.reason = f"NVML energy counter unavailable: {type(err).__name__}: {err}"
            return
        self._nvml, self._handle = pynvml, handle
        self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
        self.driver = driver.decode() if isinstance(driver, bytes) else str(driver)
        self.available = True

    def read_joules(self) -> float:
        """The counter now, in joules (NaN when unavailable)."""
        if not self.available:
            return float("nan")
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0

    def idle_power(self, seconds: float = 2.0) -> float:
        """Mean power in watts over ``seconds`` of doing nothing (NaN when unavailable)."""
        if not self.available:
            return float("nan")
        start_j, start_t = self.read_joules(), time.perf_counter()
        time.sleep(seconds)
        return (self.read_joules() - start_j) / (time.perf_counter() - start_t)


def correct_published_energy(
    frame: pd.DataFrame, *, factor: float = CODECARBON_GRID_FACTOR
) -> pd.DataFrame:
    """Put the published energy figures back into joules and kWh.

    The study's "kWh" and "J/token" are CodeCarbon emissions (kg CO2-eq) read as energy, i.e. the
    true energy times ``factor``. Ratios between configurations are unaffected; absolute values
    are ``published / factor``.

    Args:
        frame: one row per configuration and workload with ``joules_per_token_reported`` and
            optionally ``energy_kwh_reported``.
        factor: the grid factor CodeCarbon applied.

    Returns:
        A copy with ``joules_per_token`` (and ``energy_kwh``) added, in true units.

    Raises:
        KeyError: ``joules_per_token_reported`` is missing; the message lists the columns found.
    """
    if "joules_per_token_reported" not in frame:
        raise KeyError(
            f"Expected a column 'joules_per_token_reported'; found {list(frame.columns)}."
        )
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    out = frame.copy()
    out["joules_per_token"] = out["joules_per_token_reported"] / factor
    if "energy_kwh_reported" in out:
        out["energy_kwh"] = out["energy_kwh_reported"] / factor
    return out


def relative_energy(
    published: pd.DataFrame, measured: pd.DataFrame, *, reference_width: int = 8192
) -> pd.DataFrame:
    """Published and measured energy per token side by side, absolute and relative to unpruned.

    Args:
        published: rows of :func:`correct_published_energy` (``shape``, ``width``,
            ``batch_size``, ``gpu``, ``joules_per_token``); averaged over the workloads of
            each batch size.
        measured: rows of :data:`widthprune.efficiency.COLUMNS` of one energy metric.
        reference_width: the unpruned width.

    Returns:
        Long form: ``source``, ``shape``, ``width``, ``pruning_pct``, ``joules_per_token`` and
        ``relative`` (to the same source and shape at ``reference_width``).
    """
    pub = published.groupby(["gpu", "batch_size", "shape", "width"], as_index=False)[
        "joules_per_token"
    ].mean()
    pub["source"] = "study, " + pub["gpu"] + ", batch " + pub["batch_size"].astype(str)
    ours = measured.dropna(subset=["value"]).rename(columns={"value": "joules_per_token"})
    ours = ours.assign(
        source="measured, "
        + ours["device"]
        + ", "
        + ours["path"]
        + ", batch "
        + ours["batch"].astype(int).astype(str)
    )
    cols = ["source", "shape", "width", "joules_per_token"]
    out = pd.concat([pub[cols], ours[cols]], ignore_index=True)
    out["pruning_pct"] = (100 * (1 - out["width"] / reference_width)).round(1)
    ref = out[out["width"] == reference_width].set_index(["source", "shape"])["joules_per_token"]
    out["relative"] = (
        out["joules_per_token"] / out.join(ref.rename("ref"), on=["source", "shape"])["ref"]
    )
    return out
