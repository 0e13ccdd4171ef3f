"""seg_mm HamHead -> nlseg's HamburgerHead: the command line of nlseg.converters.seg_mm_hamhead."""
import sys

from nlseg.converters.seg_mm_hamhead import main

if __name__ == '__main__':
    sys.exit(main())
