"""WBC Dataset 2 -> WBCDataset: the command line of nlseg.converters.datasets.wbc."""
from nlseg.converters.cli import run_cli
from nlseg.converters.datasets.wbc import main

if __name__ == '__main__':
    run_cli(main)
