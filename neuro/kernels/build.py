"""``python -m neuro.kernels.build``: build the C++ kernels now (the set-up runs this once)."""
from __future__ import annotations

import sys

from . import _ext


def main() -> int:
    if _ext.load():
        print("neuro: C++ kernels ready")
        return 0
    print(f"neuro: C++ kernels unavailable ({_ext.error()}); the torch implementation will be used",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
