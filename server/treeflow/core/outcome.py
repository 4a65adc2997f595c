"""How one attempt of a step ended."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

from treeflow.core.model import StepStatus


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """The end of one attempt: its status, the exit code of its process if it had one, why it did not
        succeed, what its kind alone knows about it (an agent's token count, say) under ``facts``, and
    the outputs it set, if the kind has a way of its own to set them."""

    status: StepStatus
    exit_code: int | None = None
    error: str | None = None
    facts: Mapping[str, object] = field(default_factory=dict)
    # Outputs the kind reports itself (an agent's final report), laid over the `$TREEFLOW_OUTPUT` file's.
    outputs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_exit(cls, exit_code: int) -> StepOutcome:
        """A command's exit status as an outcome: 0 succeeded, anything else failed."""
        if exit_code == 0:
            return SUCCEEDED_WITH_0
        return cls(StepStatus.FAILED, exit_code, exit_description(exit_code))


SUCCEEDED_WITH_0 = StepOutcome(StepStatus.SUCCEEDED, 0)


def exit_description(exit_code: int) -> str:
    """``exit status 3``, or ``killed by SIGTERM`` for a negative status."""
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit status {exit_code}"
