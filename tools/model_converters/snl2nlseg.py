"""SNL authors' head -> nlseg's SNLHead/GSNLHead: the command line of nlseg.converters.snl."""
import sys

from nlseg.converters.snl import main

if __name__ == '__main__':
    sys.exit(main())
