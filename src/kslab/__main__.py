import sys

from kslab.cli import main

sys.exit(main())
