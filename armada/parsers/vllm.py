"""The smoke test's output (:mod:`armada.commands.vllm`): passed, or why not."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from armada.commands.vllm import EXIT_MARK

SIGILL, SIGSEGV, SIGBUS, SIGKILL = 4, 11, 7, 9
# the largest error an rms_norm may have in each dtype, relative to the largest output
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str
    illegal_instruction: bool = False


def smoke_result(output: str) -> SmokeResult:
    """Judge the smoke test's output (pure): an illegal instruction, another crash, a timeout, an
    exception, a wrong result, or the op's figures when it passed."""
    lines = output.rstrip().splitlines()
    status = None
    if lines and lines[-1].startswith(EXIT_MARK):
        status = int(lines.pop()[len(EXIT_MARK):] or -1)
    text = "\n".join(lines)
    if status is None:
        return SmokeResult(False, f"the smoke test did not finish (no exit status): {_tail(text)}")
    if status == 128 + SIGILL or "Fatal Python error: Illegal instruction" in text:
        where = _crash_frame(text)
        return SmokeResult(False, "illegal instruction (SIGILL)" + (f" in {where}" if where else "") +
                           ": this build uses CPU instructions this CPU does not have", illegal_instruction=True)
    if status == 124:
        return SmokeResult(False, "timed out")
    if status > 128:
        signal = status - 128
        name = {SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGKILL: "SIGKILL (out of memory?)"}.get(signal, f"signal {signal}")
        return SmokeResult(False, f"crashed with {name}: {_tail(text)}")
    if status != 0:
        return SmokeResult(False, f"exit status {status}: {_tail(text)}")
    figures = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)
    if figures is None:
        return SmokeResult(False, f"no result printed: {_tail(text)}")
    tolerance = TOLERANCE.get(figures["dtype"], 1e-4) * max(figures["scale"], 1.0)
    summary = (f"vLLM {figures['vllm']} {figures['op']} on {figures['device']} in {figures['dtype']}: "
               f"max error {figures['max_error']:.2g}")
    if not figures["max_error"] <= tolerance:
        return SmokeResult(False, f"{summary}, above {tolerance:.2g}: the compiled kernels compute wrong results")
    return SmokeResult(True, summary)


def _tail(text: str) -> str:
    """The last meaningful line (an exception's message), or that there was no output."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _crash_frame(text: str) -> str | None:
    """The innermost Python frame faulthandler printed when the process died: where it was."""
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith('File "')]
    return frames[0] if frames else None


PROMPT_THROUGHPUT = re.compile(r"Avg prompt throughput: ([0-9]+(?:\.[0-9]+)?) tokens/s")


def prompt_throughput_seen(journal: str) -> float:
    """The highest "Avg prompt throughput" vLLM's engine logged in ``journal`` (its periodic stats line),
    0.0 when none: above 0 only when that engine computed prompt tokens, a prefill, in the window."""
    return max((float(value) for value in PROMPT_THROUGHPUT.findall(journal)), default=0.0)
