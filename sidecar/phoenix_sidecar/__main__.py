"""``python -m phoenix_sidecar`` runs the ``phoenix`` command line."""

from phoenix_sidecar.cli import main

raise SystemExit(main())
