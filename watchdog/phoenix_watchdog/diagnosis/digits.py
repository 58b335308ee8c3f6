"""Which regexes read a line's digits: what lets a scan reuse one line's answer for its digit-folded shape.

A storm prints the same report from rank after rank, differing only in ranks, sequence numbers
and times. Fold every digit to 9 and those lines share one *shape*. A regex in which every digit
is alike - no literal digit, no character class holding some digits but not all, no
backreference - takes the same steps on each line of a shape (``\\d``, ``\\w``, ``.``, ``[^)]``
treat all ten digits alike), so it matches all of them or none, at the same span. `digit_blind`
decides that from the regex's parse tree.

`markers.scan_markers` classifies one line of a shape and reuses the answer for the others only
when the shape is *digit-quiet* (`quiet_gate`): none of the words appears in it without which no
digit-reading test of `markers.classify_line` can match. Those tests, each behind its word:

- ``Xid``: `_XID` reads the Xid code (some codes are ignored, some are application faults);
- ``ignal`` / ``exitcode``: `_NATIVE` (``Signal 11``) and `_SIGNALLED` read signal numbers;
- ``Errno``: `classify.DISK_TEXT` (``[Errno 28]``, ``[Errno 122]``), `classify.HOST_OOM_TEXT`
  (``[Errno 12]``) and the ``Errno 12`` / ``Errno 28`` needles;
- ``NCCL INFO``: `classify.NCCL_TEXT` and `classify.NCCL_UNWIND` read NCCL's result code (``-> 6``);
- ``status=``: `markers._nccl_failure` tells a non-zero work status (``status=[1-9]``).

The rule table is checked rule by rule: a rule that is not digit-blind, or a needle holding a
digit, puts its needles (folded) into the gate; such a rule without needles turns reuse off.
"""

from __future__ import annotations

import functools
import re

try:  # CPython's own regex compiler: its parse tree and opcodes (internal, so guarded)
    import re._constants as K
    import re._parser as P
except ImportError:  # a Python whose internals moved: no regex is trusted, shapes are never reused
    K = P = None  # type: ignore[assignment]

from phoenix_watchdog.diagnosis.rules import Rule, trie_regex

FOLD = str.maketrans("0123456789", "9999999999")
_DIGITS = frozenset(range(ord("0"), ord("9") + 1))
# Words without which no digit-reading test of `markers.classify_line` matches (module docstring).
DIGIT_WORDS = ("Xid", "ignal", "exitcode", "Errno", "NCCL INFO", "status=")
# Classes that treat all ten ASCII digits alike (in or out) whatever the flags.
_BLIND_CATEGORIES = frozenset() if K is None else frozenset({K.CATEGORY_DIGIT, K.CATEGORY_NOT_DIGIT, K.CATEGORY_WORD, K.CATEGORY_NOT_WORD,
                               K.CATEGORY_SPACE, K.CATEGORY_NOT_SPACE, K.CATEGORY_UNI_DIGIT,
                               K.CATEGORY_UNI_NOT_DIGIT, K.CATEGORY_UNI_WORD, K.CATEGORY_UNI_NOT_WORD,
                               K.CATEGORY_UNI_SPACE, K.CATEGORY_UNI_NOT_SPACE, K.CATEGORY_LOC_WORD,
                               K.CATEGORY_LOC_NOT_WORD, K.CATEGORY_LINEBREAK, K.CATEGORY_NOT_LINEBREAK,
                               K.CATEGORY_UNI_LINEBREAK, K.CATEGORY_UNI_NOT_LINEBREAK})


def digit_blind(pattern: str | re.Pattern[str]) -> bool:
    """Whether a regex treats every ASCII digit alike (see the module docstring)."""
    if P is None:
        return False
    if isinstance(pattern, re.Pattern):
        pattern, flags = pattern.pattern, pattern.flags
    else:
        flags = 0
    try:
        tree = P.parse(pattern, flags)
    except re.error:
        return False
    return _blind(tree)


def _blind(items) -> bool:  # noqa: ANN001 (a parse tree: a SubPattern or a list of (op, arg))
    for op, arg in items:
        if op in (K.LITERAL, K.NOT_LITERAL):
            if arg in _DIGITS:
                return False
        elif op == K.IN:
            if not _class_blind(arg):
                return False
        elif op in (K.GROUPREF, K.GROUPREF_EXISTS):
            return False  # compares what a group read: digits included
        elif op == K.SUBPATTERN:
            if not _blind(arg[3]):
                return False
        elif op in (K.MAX_REPEAT, K.MIN_REPEAT, K.POSSESSIVE_REPEAT):
            if not _blind(arg[2]):
                return False
        elif op in (K.ASSERT, K.ASSERT_NOT):
            if not _blind(arg[1]):
                return False
        elif op == K.ATOMIC_GROUP:
            if not _blind(arg):
                return False
        elif op == K.BRANCH:
            if not all(_blind(b) for b in arg[1]):
                return False
        elif op not in (K.ANY, K.AT, K.CATEGORY):
            return False  # an opcode not known here: assume it reads digits
    return True


def _class_blind(items) -> bool:  # noqa: ANN001
    """Whether a character class holds all ten digits or none."""
    inside: set[int] = set()
    for op, arg in items:
        if op == K.LITERAL:
            inside |= {arg} & _DIGITS
        elif op == K.RANGE:
            inside |= {c for c in _DIGITS if arg[0] <= c <= arg[1]}
        elif op == K.CATEGORY:
            if arg not in _BLIND_CATEGORIES:
                return False
        elif op != K.NEGATE:
            return False
    return not inside or inside == _DIGITS


@functools.lru_cache(maxsize=8)
def quiet_gate(rules: tuple[Rule, ...]) -> re.Pattern[str] | None:
    """A regex that hits every digit-folded shape whose lines `classify_line` may tell apart by
    their digits; None when no shape can be trusted (a digit-reading rule without needles)."""
    words = list(DIGIT_WORDS)
    for r in rules:
        if not digit_blind(r.regex):
            if not r.needles:
                return None
            words += [n.translate(FOLD) for n in r.needles]
        words += [n.translate(FOLD) for n in r.needles if n.translate(FOLD) != n]
    return trie_regex(tuple(dict.fromkeys(words)))


@functools.lru_cache(maxsize=8)
def text_keyed(rules: tuple[Rule, ...]) -> frozenset[str]:
    """The `Rule.describe` of the rules whose signature key is read from the line's text."""
    return frozenset(r.describe() for r in rules if r.key in ("match", "message"))
