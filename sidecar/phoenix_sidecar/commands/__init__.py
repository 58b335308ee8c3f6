"""One module per `phoenix` subcommand. Each defines ``add_parser(subparsers)`` and ``run(args) -> int``."""
