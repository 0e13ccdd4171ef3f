"""SegNet's CamVid -> CamVidDataset: the command line of nlseg.converters.datasets.camvid."""
from nlseg.converters.cli import run_cli
from nlseg.converters.datasets.camvid import main

if __name__ == '__main__':
    run_cli(main)
