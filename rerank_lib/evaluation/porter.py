"""The Porter (1980) stemmer, as in Martin Porter's reference C implementation and Lucene's ``PorterStemFilter``.

BM25 baselines that users know (Anserini/Pyserini, Elasticsearch's English analyzer) stem with this algorithm, so
our in-process BM25 uses it too. It includes the reference implementation's two departures from the paper
("bli" -> "ble" instead of "abli" -> "able", and "logi" -> "log"), and leaves words of one or two letters alone.
"""

from __future__ import annotations

from functools import lru_cache

_VOWELS = frozenset("aeiou")

# step 2: double suffixes to single ones, grouped by their penultimate letter as in the reference implementation
_STEP2 = {
    "a": (("ational", "ate"), ("tional", "tion")),
    "c": (("enci", "ence"), ("anci", "ance")),
    "e": (("izer", "ize"),),
    "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
    "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
    "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
    "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
    "g": (("logi", "log"),),
}
# step 3: -ic-, -full, -ness etc., grouped by the last letter
_STEP3 = {
    "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
    "i": (("iciti", "ic"),),
    "l": (("ical", "ic"), ("ful", "")),
    "s": (("ness", ""),),
}
# step 4: suffixes removed when the measure of the stem is above 1, grouped by the penultimate letter
_STEP4 = {
    "a": ("al",),
    "c": ("ance", "ence"),
    "e": ("er",),
    "i": ("ic",),
    "l": ("able", "ible"),
    "n": ("ant", "ement", "ment", "ent"),
    "o": ("ion", "ou"),
    "s": ("ism",),
    "t": ("ate", "iti"),
    "u": ("ous",),
    "v": ("ive",),
    "z": ("ize",),
}


class _Word:
    """The word being stemmed: ``b[: k + 1]`` is the current word, ``b[: j + 1]`` the stem before a suffix."""

    def __init__(self, word: str) -> None:
        self.b = list(word)
        self.k = len(word) - 1
        self.j = 0

    def cons(self, i: int) -> bool:
        char = self.b[i]
        if char in _VOWELS:
            return False
        if char == "y":
            return i == 0 or not self.cons(i - 1)
        return True

    def m(self) -> int:
        """Number of vowel-consonant sequences in ``b[: j + 1]`` (the paper's measure)."""
        n = 0
        i = 0
        while True:
            if i > self.j:
                return n
            if not self.cons(i):
                break
            i += 1
        i += 1
        while True:
            while True:
                if i > self.j:
                    return n
                if self.cons(i):
                    break
                i += 1
            i += 1
            n += 1
            while True:
                if i > self.j:
                    return n
                if not self.cons(i):
                    break
                i += 1
            i += 1

    def vowel_in_stem(self) -> bool:
        return any(not self.cons(i) for i in range(self.j + 1))

    def double_consonant(self, i: int) -> bool:
        return i >= 1 and self.b[i] == self.b[i - 1] and self.cons(i)

    def cvc(self, i: int) -> bool:
        """Consonant-vowel-consonant ending at ``i``, the last consonant not w, x or y (as in hop, not snow)."""
        if i < 2 or not self.cons(i) or self.cons(i - 1) or not self.cons(i - 2):
            return False
        return self.b[i] not in "wxy"

    def ends(self, suffix: str) -> bool:
        length = len(suffix)
        if length > self.k + 1 or "".join(self.b[self.k - length + 1 : self.k + 1]) != suffix:
            return False
        self.j = self.k - length
        return True

    def set_to(self, replacement: str) -> None:
        self.b[self.j + 1 : self.k + 1] = list(replacement)
        self.k = self.j + len(replacement)

    def replace_if_measure(self, replacement: str) -> None:
        if self.m() > 0:
            self.set_to(replacement)

    def step1ab(self) -> None:
        """Plurals and -ed / -ing."""
        if self.b[self.k] == "s":
            if self.ends("sses"):
                self.k -= 2
            elif self.ends("ies"):
                self.set_to("i")
            elif self.b[self.k - 1] != "s":
                self.k -= 1
        if self.ends("eed"):
            if self.m() > 0:
                self.k -= 1
        elif (self.ends("ed") or self.ends("ing")) and self.vowel_in_stem():
            self.k = self.j
            if self.ends("at"):
                self.set_to("ate")
            elif self.ends("bl"):
                self.set_to("ble")
            elif self.ends("iz"):
                self.set_to("ize")
            elif self.double_consonant(self.k):
                self.k -= 1
                if self.b[self.k] in "lsz":
                    self.k += 1
            else:
                self.j = self.k
                if self.m() == 1 and self.cvc(self.k):
                    self.set_to("e")

    def step1c(self) -> None:
        """Terminal y to i when the stem has a vowel."""
        if self.ends("y") and self.vowel_in_stem():
            self.b[self.k] = "i"

    def step2(self) -> None:
        for suffix, replacement in _STEP2.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                self.replace_if_measure(replacement)
                return

    def step3(self) -> None:
        for suffix, replacement in _STEP3.get(self.b[self.k], ()):
            if self.ends(suffix):
                self.replace_if_measure(replacement)
                return

    def step4(self) -> None:
        for suffix in _STEP4.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                if suffix == "ion" and not (self.j >= 0 and self.b[self.j] in "st"):
                    continue  # -ion only after s or t; "ou" may still match
                break
        else:
            return
        if self.m() > 1:
            self.k = self.j

    def step5(self) -> None:
        """Final -e and double -ll."""
        self.j = self.k
        if self.b[self.k] == "e":
            measure = self.m()
            if measure > 1 or (measure == 1 and not self.cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self.double_consonant(self.k) and self.m() > 1:
            self.k -= 1


@lru_cache(maxsize=1 << 18)
def porter_stem(word: str) -> str:
    """The Porter stem of a lower-case word (cached: corpora repeat words)."""
    if len(word) <= 2:
        return word
    state = _Word(word)
    state.step1ab()
    if state.k > 0:
        state.step1c()
        state.step2()
        state.step3()
        state.step4()
        state.step5()
    return "".join(state.b[: state.k + 1])
