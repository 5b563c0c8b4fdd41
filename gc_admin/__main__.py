import sys

from gc_admin.cli import main

sys.exit(main())
