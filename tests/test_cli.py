"""The command line: help without torch, the demo end to end, bad arguments."""

import subprocess
import sys

import pytest

from rnnkit.cli import main


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from rnnkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'rnnkit --help imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("rnnkit ")


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_demo_runs_end_to_end(capsys):
    assert main(["demo", "--steps", "3", "--delay", "4"]) == 0
    out = capsys.readouterr().out
    for kind in ("RNN", "LSTM", "GRU"):
        assert f"{kind}: largest difference in outputs and gradients" in out
    assert out.count(" / ") >= 9  # rnnkit / torch.nn for loss, accuracy and time, per cell


@pytest.mark.parametrize("bad", [["demo", "--steps", "0"], ["demo", "--steps", "many"]])
def test_bad_arguments_get_a_clear_message_and_exit_code_2(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(bad)
    assert exit_info.value.code == 2
    assert "expected a positive whole number" in capsys.readouterr().err


def test_large_blocks_come_from_the_heap_once_reuse_is_asked_for():
    """reuse_large_allocations makes glibc serve a 100 MB block from the heap, where freed
    memory stays in the process, instead of a fresh mapping that free() unmaps."""
    import platform
    import subprocess
    import sys

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    program = """
import sys, torch
from rnnkit.memory import reuse_large_allocations
if sys.argv[1] == "reuse":
    assert reuse_large_allocations()
block = torch.ones(25_000_000)  # 100 MB, kept while the maps are read
pointer = block.data_ptr()
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        if low <= pointer < high:
            print(fields[5] if len(fields) > 5 else "a mapping of its own")
"""
    where = {
        mode: subprocess.run([sys.executable, "-c", program, mode], capture_output=True,
                             text=True, check=True).stdout.strip()
        for mode in ("reuse", "default")
    }  # fmt: skip
    assert where == {"reuse": "[heap]", "default": "a mapping of its own"}
