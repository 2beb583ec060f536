import sys

from vibetunnel.keeper.daemon import main

sys.exit(main())
