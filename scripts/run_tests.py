"""Run the whole test suite: the `make test` command.

Exit codes: pytest's, except that "no tests collected" (5) is an error: a suite that
runs nothing must never look green.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    args = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    code = subprocess.call(args)  # noqa: S603 - our own interpreter and arguments
    if code == 5:
        print("make test: no tests were collected - treating as a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
