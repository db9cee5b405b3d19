"""Convert a Gen1-layout folder: ``python tools/events_gen1.py ROOT OUT --timesteps 2 --window-ms 50``."""

import sys

from spikeyolo_ibra.events.cli import main

if __name__ == "__main__":
    sys.exit(main(["gen1", *sys.argv[1:]]))
