"""Organisation names that could pass for another tenant's: mixed scripts and confusable look-alikes.

name_skeleton() is a confusables skeleton in the manner of Unicode TS #39 section 4: two names with the same
skeleton look alike ("Acme Care" with a Latin a or a Cyrillic а, "0range" and "Orange"). It folds with NFKC and
casefold (names are unique ignoring case) and maps every character to one representative of its confusable class,
taken from the confusables data of the confusable_homoglyphs package (Unicode's confusables.txt).
"""

import functools
import unicodedata

# confusable_homoglyphs reads two JSON files (about 0.1 s of CPU) when imported: done on first use, not at start-up
# (every worker process imports this module through the admin and never checks a name).
_BIDI_MARKS = "\u200e\u200f"


@functools.cache
def _classes() -> dict[str, str]:
    """Each confusable character -> its class's representative (the smallest code point in the class), or the
    multi-character prototype it maps to ("m" -> "rn")."""
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        while parent.setdefault(char, char) != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    from confusable_homoglyphs import confusables

    sequences: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        for glyph in glyphs:
            other = glyph["c"].strip(_BIDI_MARKS)
            if len(other) == 1:
                a, b = find(char), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            elif len(glyphs) == 1 and other:
                sequences[char] = other  # the character's prototype is a sequence
    mapping = {char: find(char) for char in parent}
    mapping.update(sequences)
    return mapping


def _map(text: str) -> str:
    classes = _classes()
    mapped = "".join(classes.get(char, char) for char in text)
    # A prototype sequence ("rn") is made of characters that have classes themselves.
    return "".join(classes.get(char, char) if len(classes.get(char, char)) == 1 else char for char in mapped)


def name_skeleton(name: str) -> str:
    # Mapped before and after folding case: a capital may pass for a Latin letter where its small form does not
    # (Cyrillic "М" and "M", but "м" and "m" differ).
    text = _map(unicodedata.normalize("NFKC", name or ""))
    text = _map(unicodedata.normalize("NFKC", text.casefold()))
    return " ".join(text.split())[:200]


def name_mixes_scripts(name: str) -> list[str]:
    """The look-alike characters of a word that mixes scripts ("Cаre" with a Cyrillic а among Latin letters), or
    []. Words each in one script pass, whatever the scripts (Σίγμα Co, 株式会社 Tokyo, Müller & Söhne), and so does
    a word mixing scripts whose characters cannot pass for one another."""
    from confusable_homoglyphs import categories, confusables

    found: set[str] = set()
    for word in name.split():
        aliases = categories.unique_aliases(word) - {"COMMON", "INHERITED"}
        if len(aliases) < 2:
            continue
        counts = {alias: sum(1 for ch in word if categories.alias(ch) == alias) for alias in aliases}
        majority = max(sorted(counts), key=counts.get)
        for char in set(word):
            alias = categories.alias(char)
            if alias in aliases and alias != majority and confusables.is_confusable(char, preferred_aliases=[majority]):
                found.add(char)
    return sorted(found)
