"""Convert a SpikeYOLO checkpoint: ``python tools/import_spikeyolo.py --weights 69M_best.pt --out spikeyolo-l.pt``."""

import sys

from spikeyolo_ibra.interop.cli import main

if __name__ == "__main__":
    sys.exit(main())
