"""ARNLB authors' ARNLHead -> nlseg's ARNLHead: the command line of nlseg.converters.arnlb."""
import sys

from nlseg.converters.arnlb import main

if __name__ == '__main__':
    sys.exit(main())
