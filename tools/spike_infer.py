"""Run a trained spiking detector spike-driven: ``python tools/spike_infer.py --weights best.pt --source img.jpg``."""

import sys

from spikeyolo_ibra.spike.cli import main

if __name__ == "__main__":
    sys.exit(main())
