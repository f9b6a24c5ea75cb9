"""``python -m treadle`` is the ``treadle`` command."""

from .cli import main

raise SystemExit(main())
