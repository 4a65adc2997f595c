"""A `distributed.LocalCluster` with worker processes on 127.0.0.1, as a program of its own.

Run as ``python -m tests.dask.local_cluster ADDRESS_FILE WORKERS``: it writes the scheduler's
address to ADDRESS_FILE once the workers are up, and closes the cluster on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from distributed import LocalCluster


def main(address_file: Path, workers: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        resources={"cpu": 2},
    ) as cluster:
        address_file.write_text(cluster.scheduler_address)
        stop.wait()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
