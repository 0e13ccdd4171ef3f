"""HamburgerV1 -> nlseg's Hamburger: the command line of nlseg.converters.hamburger_v1."""
import sys

from nlseg.converters.hamburger_v1 import main

if __name__ == '__main__':
    sys.exit(main())
