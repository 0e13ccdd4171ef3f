"""Running nlseg's tools in subprocesses the way a user does (OMP_NUM_THREADS=1, torch's
default weights_only=True)."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import ROOT, tool_env


def start_tool(tool: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, f'tools/{tool}.py', *args], cwd=ROOT,
                            env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen, timeout: int = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run_tool(tool: str, *args: str, timeout: int = 600) -> tuple[int, str, str]:
    return finish(start_tool(tool, *args), timeout)


_METRICS = re.compile(r'Iter\((?:val|test)\) \[\d+/\d+\]\s+(aAcc:.*?)\s+data_time')


def metric_lines(log: str) -> list[str]:
    """The metric part of every validation/test summary line of an mmengine log."""
    return _METRICS.findall(log)
