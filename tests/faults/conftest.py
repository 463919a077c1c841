"""Shows the fault drills' figures at the end of the run (they go into the closing notes)."""

from __future__ import annotations

import pytest

from tests.faults.drill import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault drill figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
