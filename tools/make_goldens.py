#!/usr/bin/python3
"""Writes the PyTorch golden files under tests/golden/ that the C++ parity tests read.

Run from the repository root with Debian's python3-torch (1.13):
    /usr/bin/python3 tools/make_goldens.py
Layers and losses come from golden_layers.py, reference models and optimisers from
golden_models.py, learning-rate schedules from golden_schedules.py. Output is deterministic: the same torch version writes the same files.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_layers  # noqa: E402
import golden_models  # noqa: E402
import golden_schedules  # noqa: E402


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    golden_layers.main(os.path.join(root, "layers"))
    golden_models.main(os.path.join(root, "models"))
    golden_schedules.main(os.path.join(root, "schedules"))
    print(f"goldens written under {os.path.normpath(root)} with torch {torch.__version__}")


if __name__ == "__main__":
    main()
