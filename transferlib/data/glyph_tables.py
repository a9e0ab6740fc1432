"""Per-character facts for the Glyphs dataset.

Every character-determined attribute of :mod:`transferlib.data.glyphs` is read from
these tables, so that ``H(attribute | char) = 0`` holds by construction. The facts
describe the character in its standard upright sans-serif form (DejaVu Sans); a
few are conventions for borderline shapes, stated next to the set that uses them.
"""

from __future__ import annotations

LATIN_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LATIN_LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
# Greek capitals that look like a Latin capital (Alpha, Beta, ...) are left out so that
# every class is visually distinct from the others in its script group.
GREEK_UPPER = "ΓΔΘΛΞΠΣΦΨΩ"
# Omicron is left out: it is the Latin "o".
GREEK_LOWER = "αβγδεζηθικλμνξπρστυφχψω"
SYMBOLS = "+×÷=<>?!@#$%&*/"

CHARACTERS = LATIN_UPPER + LATIN_LOWER + DIGITS + GREEK_UPPER + GREEK_LOWER + SYMBOLS

SCRIPTS = ("latin_upper", "latin_lower", "digit", "greek_upper", "greek_lower", "symbol")
_SCRIPT_CHARS = dict(
    zip(SCRIPTS, (LATIN_UPPER, LATIN_LOWER, DIGITS, GREEK_UPPER, GREEK_LOWER, SYMBOLS))
)

VOWELS = "AEIOUaeiou" + "Ω" + "αεηιυω"
# Lowercase letters rising above the x-height.
ASCENDERS = "bdfhklt" + "βδζθλξ"
# Letters descending below the baseline.
DESCENDERS = "gjpqy" + "βγζημξρφχψ"
# An enclosed counter (a region of background fully surrounded by ink).
CLOSED_LOOPS = "ABDOPQR" + "abdegopq" + "04689" + "ΔΘΦ" + "αβδθρσφ" + "#%&@"
# Mirror symmetric about the vertical axis.
SYMMETRIC_LR = "AHIMOTUVWXY" + "ilovwx" + "08" + "ΔΘΛΞΠΦΨΩ" + "φψ" + "+×÷=!*#"
# Mirror symmetric about the horizontal axis.
SYMMETRIC_UD = "BCDEHIKOX" + "cox" + "038" + "ΘΞ" + "+×÷=#"
# Drawn with straight strokes only (dots count as not straight).
STRAIGHT_STROKES = "AEFHIKLMNTVWXYZ" + "klvwxz" + "147" + "ΓΔΛΞΠΣ" + "+×=<>#/*"
# Has a detached dot.
DOTS = "ij!?÷"
# Narrow glyphs (advance width well below the em in proportional fonts).
NARROW = "Ifijlrt" + "1" + "ι" + "!"

# name -> (set of positive characters, description)
CHARACTER_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "uppercase": (LATIN_UPPER + GREEK_UPPER, "Latin or Greek capital letter"),
    "lowercase": (LATIN_LOWER + GREEK_LOWER, "Latin or Greek small letter"),
    "digit": (DIGITS, "decimal digit"),
    "latin": (LATIN_UPPER + LATIN_LOWER, "Latin letter"),
    "greek": (GREEK_UPPER + GREEK_LOWER, "Greek letter"),
    "symbol": (SYMBOLS, "punctuation or mathematical symbol"),
    "vowel": (VOWELS, "vowel letter (Latin a e i o u, Greek α ε η ι υ ω, either case)"),
    "has_ascender": (ASCENDERS, "small letter rising above the x-height"),
    "has_descender": (DESCENDERS, "letter descending below the baseline"),
    "closed_loop": (CLOSED_LOOPS, "has an enclosed counter"),
    "symmetric_lr": (SYMMETRIC_LR, "mirror symmetric about the vertical axis"),
    "symmetric_ud": (SYMMETRIC_UD, "mirror symmetric about the horizontal axis"),
    "straight_strokes": (STRAIGHT_STROKES, "drawn with straight strokes only"),
    "has_dot": (DOTS, "has a detached dot"),
    "narrow": (NARROW, "narrow glyph"),
}


def script_of(char: str) -> str:
    """Return the script group (one of :data:`SCRIPTS`) of a Glyphs character."""
    for script, chars in _SCRIPT_CHARS.items():
        if char in chars:
            return script
    raise ValueError(f"{char!r} is not a Glyphs character; valid: {CHARACTERS!r}")


def case_of(char: str) -> str:
    """Return ``"upper"``, ``"lower"`` or ``"none"`` (digits and symbols)."""
    script = script_of(char)
    return "upper" if script.endswith("upper") else "lower" if script.endswith("lower") else "none"
