"""mmseg's LightHamHead -> nlseg's HamburgerHead: the command line of nlseg.converters.lightham."""
import sys

from nlseg.converters.lightham import main

if __name__ == '__main__':
    sys.exit(main())
