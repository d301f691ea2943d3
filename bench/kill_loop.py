"""kill -9, many times: the long version of tests/test_durability.py.

    .venv/bin/python bench/kill_loop.py --rounds 200 --threads 8

Each round starts `traceglider serve` on the same storage, sends 10-event batches
from several threads, SIGKILLs the server at a random moment once traffic flows, and
remembers every event id that got a 202. At the end the spool is drained and every
acknowledged id must be in storage. Exit status 1 if any is missing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import (
    free_port,  # noqa: E402
    stored_ids,  # noqa: E402
)
from tests.server import drain, kill_round  # noqa: E402
from traceglider.storage.local import LocalStorage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    acked: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        for n in range(1, args.rounds + 1):
            kill_round(data, free_port(), acked, rng, args.threads)
            print(f"\rround {n}/{args.rounds}: {len(acked):,} events acknowledged", end="", flush=True)
        drain(data, free_port())
        missing = set(acked) - set(stored_ids(LocalStorage(data)))
    print(f"\n{args.rounds} kill -9 rounds in {time.monotonic() - started:.0f} s: {len(acked):,} acknowledged, "
          f"{len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
