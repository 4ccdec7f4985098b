"""The process keeps freed memory (`memory.keep_freed_memory`): repeated work of large temporaries stops faulting."""

import subprocess
import sys
import textwrap

import pytest

# Four 6 MB temporaries at a time, freed together, 20 times: the pattern of a learned map's forward passes.
_CHURN = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from dinoscope.memory import keep_freed_memory
    import dinoscope.cli  # importing the command's module must not apply it: only its entry point does
    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    def churn():
        for _ in range(20):
            parts = [np.ones(1_500_000, np.float32) for _ in range(4)]
            del parts
    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True).stdout
    applied, faults = out.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_is_not_faulted_in_again():
    applied, kept = _faults("keep")
    assert applied
    _, default = _faults("default")
    pages = 20 * 4 * 6_000_000 // 4096  # every page of every temporary
    # with dinoscope.cli imported but not run, glibc still hands the freed top back (45,000 of 117,187 here)
    assert default > pages // 5
    assert kept < pages // 100
