import sys

from vibetunnel.cli.main import main

sys.exit(main())
