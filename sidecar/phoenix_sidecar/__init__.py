"""Phoenix sidecar: acts on what the watchdog observes.

The package is built in wings, one folder per concern; each wing's ``__init__`` says what it is
for, what it may import, and exports its public face:

    config/     the settings schema, the loader (flags > environment > file > defaults), rendering
    supervise/  the loop that keeps one job alive: state and its transitions, policy, lock; and
                ``supervise.session``, the one composition root that wires every wing together
    runtime/    whatever runs the job (``local/`` process group, ``docker/`` container), behind one
                `Runtime` protocol, with one output tail and one way to stop a process group
    observe/    metrics and their HTTP endpoint, safety gates, webhook notifier, console, run log
    repair/     LLM clients (``llm/``), answer parsing and patch placement (``patch/``), isolation,
                verification and promotion
    commands/   one thin module per ``phoenix`` subcommand; no runtime internals

Shared by every wing, at the top: ``errors`` (error types, translated to exit codes in ``cli``),
``events`` (the records the wings tell each other through the event bus), ``fsutil`` (the one seam
for durable file writes) and ``paths`` (the ``.phoenix_cli/`` layout).

Imports run from here to ``phoenix_watchdog``, never back; ``tests/test_layout.py`` checks the
rules each wing states.
"""

__version__ = "0.1.0"
