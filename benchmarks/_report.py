"""Shared ending of the benchmark scripts: save the table under results/ and print it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd
import torch


def report(table: pd.DataFrame, name: str, title: str, load_before: tuple, decimals: int) -> None:
    """Write ``results/<name>.csv`` and print a titled Markdown table with the machine load."""
    load_after = os.getloadavg()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    threads = torch.get_num_threads()
    machine = platform.processor() or platform.machine()
    print(f"# {title} ({machine}, {threads} thread(s), torch {torch.__version__})")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}\n")
    try:
        print(table.round(decimals).to_markdown(index=False))
    except ImportError:  # to_markdown needs the optional package tabulate
        print(table.round(decimals).to_string(index=False))
