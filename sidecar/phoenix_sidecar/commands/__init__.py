"""Commands: one thin module per ``phoenix`` subcommand.

Each defines ``add_parser(subparsers)`` and ``run(args) -> int``. A command parses its flags, loads
the configuration and hands over to a wing's face (``supervise.session`` for ``run`` and ``watch``,
``repair`` for ``patch`` and ``rollback``, ``runtime`` for what ``status`` and ``doctor`` ask the
engine). Commands never build runtimes nor import a wing's internals; heavy imports (the Docker
SDK, the repair engine) happen only in the command that runs.
"""
