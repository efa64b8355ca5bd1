#!/usr/bin/env python3
"""Build TinyTalks: about 3,000 short question-answer pairs in 5 difficulty levels.

    python scripts/data/build_tinytalks.py [--out DIR]

writes ``tinytorch/data/files/tinytalks.json.gz`` and its datasheet ``tinytalks.md``, and
records the file's sha256 in ``scripts/data/SHA256SUMS`` (with ``--out DIR``: only the
``.json.gz``, into DIR, for the tests' rebuild-and-compare). Deterministic: no clock, no
unseeded randomness, gzip without a time stamp, so every build gives the same bytes.

Design (for a small character-level GPT trained for a few minutes):
- Every pair comes from a *family*: one rule that computes the answer (``a + b``, the
  colour of a thing, the day after a day, ...) and several question *templates* (phrasings).
- A family's pairs form a grid of templates x keys. The split is diagonal:
  ``(template + key) % 10 == 0`` goes to test, ``== 5`` to validation, the rest to train.
  So every test question is new (no question string is shared between splits) while its
  key appears in training under another phrasing and its phrasing appears with other
  keys: the model must recombine, not recall a string.
- Answers are short (a word, a number, a name) and exact, so a program can check them:
  ``normalize(generated) == normalize(answer)`` with lower case, letters/digits/spaces only.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FILES, atomic_write_bytes, gzip_bytes, record_checksum, sha256_file  # noqa: E402

SEED = 1958
LEVELS = {
    1: "greetings: answer a greeting, copying the speaker's name",
    2: "facts: colours, animal sounds, opposites, plurals, baby animals, number words",
    3: "arithmetic: one-digit addition, small subtraction and multiplication",
    4: "sequences and comparisons: next/previous number, bigger/smaller, first/last letter, next day/month",
    5: "simple reasoning: two-sentence word problems, orderings, parity, tomorrow/yesterday",
}

NAMES = ["Ada", "Alan", "Anna", "Ben", "Bob", "Cara", "Dan", "Eva", "Finn", "Gus", "Hana", "Ian",
         "Ivy", "Jack", "Jane", "Kai", "Kim", "Leo", "Lily", "Max", "Mia", "Nina", "Noah", "Omar",
         "Owen", "Pia", "Raj", "Rosa", "Sam", "Sara", "Tom", "Uma", "Vera", "Will", "Yara", "Zoe",
         "Amir", "Bea", "Carl", "Dina", "Eli", "Femi", "Gina", "Hugo", "Ines", "Joel", "Kofi", "Lena",
         "Mona", "Nils", "Olga", "Paul", "Rita", "Seth", "Tara", "Ugo", "Vik", "Wen", "Yuki", "Zack"]
COLORS = {"the sky": "blue", "grass": "green", "snow": "white", "a banana": "yellow", "coal": "black",
          "a tomato": "red", "a carrot": "orange", "milk": "white", "a lemon": "yellow", "a frog": "green",
          "the sun": "yellow", "a crow": "black", "blood": "red", "the sea": "blue", "a lime": "green",
          "chocolate": "brown", "an eggplant": "purple", "a flamingo": "pink", "a pumpkin": "orange",
          "soil": "brown"}
SOUNDS = {"dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa", "pig": "oink",
          "lion": "roar", "owl": "hoot", "bee": "buzz", "snake": "hiss", "horse": "neigh",
          "mouse": "squeak", "frog": "ribbit", "rooster": "cockadoodledoo", "donkey": "heehaw"}
OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("old", "new"),
             ("happy", "sad"), ("light", "dark"), ("open", "closed"), ("full", "empty"), ("high", "low"),
             ("wet", "dry"), ("hard", "soft"), ("early", "late"), ("rich", "poor"), ("long", "short"),
             ("left", "right"), ("day", "night"), ("in", "out"), ("push", "pull"), ("win", "lose")]
PLURALS = {"cat": "cats", "dog": "dogs", "box": "boxes", "bus": "buses", "mouse": "mice",
           "child": "children", "foot": "feet", "tooth": "teeth", "man": "men", "woman": "women",
           "goose": "geese", "city": "cities", "baby": "babies", "leaf": "leaves", "knife": "knives",
           "wolf": "wolves", "fish": "fish", "sheep": "sheep", "person": "people", "book": "books",
           "tree": "trees", "dish": "dishes", "church": "churches", "fox": "foxes", "party": "parties",
           "story": "stories", "car": "cars", "apple": "apples", "house": "houses", "glass": "glasses"}
BABIES = {"dog": "puppy", "cat": "kitten", "cow": "calf", "sheep": "lamb", "horse": "foal",
          "duck": "duckling", "pig": "piglet", "goat": "kid", "frog": "tadpole", "bear": "cub",
          "hen": "chick", "kangaroo": "joey"}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                "eighteen", "nineteen", "twenty"]
WORDS = ["apple", "river", "house", "cloud", "tiger", "music", "bread", "green", "chair", "light",
         "ocean", "pencil", "garden", "window", "rabbit", "yellow", "planet", "dragon", "silver", "forest",
         "kite", "moon", "star", "fish", "lamp", "train", "zebra", "queen", "jelly", "violin",
         "umbrella", "hammer", "lemon", "island", "engine", "candle", "bottle", "nest", "orbit", "wagon"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
OBJECTS = ["apple", "ball", "book", "cookie", "pen", "marble", "card", "shell", "coin", "sticker"]


def family(level, name, templates, keys, answer):
    """``(level, family, templates, keys, answer_fn)``; a template is ``str.format``-ed with a key dict."""
    return level, name, templates, keys, answer


def families(rng: np.random.Generator) -> list:
    def sample(items, n):
        items = list(items)
        idx = rng.choice(len(items), size=min(n, len(items)), replace=False)
        return [items[i] for i in sorted(idx)]

    names = [{"n": n} for n in NAMES]
    pairs = [(a, b) for a in NAMES for b in NAMES if a != b]
    opp = {**dict(OPPOSITES), **{b: a for a, b in OPPOSITES}}
    F = [
        # level 1: greetings (the answer copies the name)
        family(1, "intro", ["Hi, I am {n}.", "Hello, my name is {n}.", "Hey, I'm {n}.", "Good morning, I am {n}."],
               names, lambda k: f"Hello, {k['n']}!"),
        family(1, "farewell", ["Goodbye, from {n}.", "Bye for now, {n} here.", "See you later, this is {n}."],
               names, lambda k: f"Goodbye, {k['n']}!"),
        family(1, "thanks", ["Thank you! - {n}", "Thanks a lot, from {n}.", "Many thanks, {n} here."],
               names, lambda k: f"You are welcome, {k['n']}!"),
        # level 2: facts
        family(2, "color", ["What color is {t}?", "What is the color of {t}?", "Tell me the color of {t}.",
                            "Name the color of {t}."],
               [{"t": t} for t in COLORS], lambda k: COLORS[k["t"]]),
        family(2, "sound", ["What sound does a {a} make?", "What does a {a} say?", "Which sound does a {a} make?",
                            "A {a} says what?"],
               [{"a": a} for a in SOUNDS], lambda k: SOUNDS[k["a"]]),
        family(2, "opposite", ["What is the opposite of {w}?", "Opposite of {w}?", "Give the opposite of {w}.",
                               "Name the opposite of {w}."],
               [{"w": w} for w in opp], lambda k: opp[k["w"]]),
        family(2, "plural", ["What is the plural of {w}?", "Plural of {w}?", "Give the plural of {w}.",
                             "One {w}, two what?"],
               [{"w": w} for w in PLURALS], lambda k: PLURALS[k["w"]]),
        family(2, "baby", ["What is a baby {a} called?", "A baby {a} is called what?", "Name a baby {a}.",
                           "What do we call a young {a}?"],
               [{"a": a} for a in BABIES], lambda k: BABIES[k["a"]]),
        family(2, "number_word", ["How do you write {x} in words?", "Write {x} as a word.",
                                  "What is {x} in words?", "Spell the number {x}."],
               [{"x": i} for i in range(len(NUMBER_WORDS))], lambda k: NUMBER_WORDS[k["x"]]),
        # level 3: arithmetic
        family(3, "add", ["What is {a} plus {b}?", "What is {a} + {b}?", "Add {a} and {b}."],
               [{"a": a, "b": b} for a in range(10) for b in range(10)], lambda k: str(k["a"] + k["b"])),
        family(3, "subtract", ["What is {a} minus {b}?", "What is {a} - {b}?", "Take {b} from {a}."],
               sample([{"a": a, "b": b} for a in range(13) for b in range(a + 1)], 50),
               lambda k: str(k["a"] - k["b"])),
        family(3, "multiply", ["What is {a} times {b}?", "What is {a} * {b}?", "Multiply {a} by {b}."],
               sample([{"a": a, "b": b} for a in range(1, 10) for b in range(1, 10)], 50),
               lambda k: str(k["a"] * k["b"])),
        # level 4: sequences and comparisons
        family(4, "next_number", ["What comes after {x}?", "What number follows {x}?", "What is one more than {x}?"],
               [{"x": x} for x in range(50)], lambda k: str(k["x"] + 1)),
        family(4, "previous_number", ["What comes before {x}?", "What number is just before {x}?",
                                      "What is one less than {x}?"],
               [{"x": x} for x in range(1, 41)], lambda k: str(k["x"] - 1)),
        family(4, "bigger", ["Which is bigger, {a} or {b}?", "Which number is larger: {a} or {b}?"],
               sample([{"a": a, "b": b} for a in range(1, 30) for b in range(1, 30) if a != b], 30),
               lambda k: str(max(k["a"], k["b"]))),
        family(4, "smaller", ["Which is smaller, {a} or {b}?", "Which number is less: {a} or {b}?"],
               sample([{"a": a, "b": b} for a in range(1, 30) for b in range(1, 30) if a != b], 30),
               lambda k: str(min(k["a"], k["b"]))),
        family(4, "first_letter", ["What is the first letter of {w}?", "Which letter does {w} start with?"],
               [{"w": w} for w in WORDS], lambda k: k["w"][0]),
        family(4, "last_letter", ["What is the last letter of {w}?", "Which letter does {w} end with?"],
               [{"w": w} for w in WORDS], lambda k: k["w"][-1]),
        family(4, "next_day", ["What day comes after {d}?", "Which day follows {d}?", "What is the day after {d}?"],
               [{"d": d} for d in DAYS], lambda k: DAYS[(DAYS.index(k["d"]) + 1) % 7]),
        family(4, "next_month", ["What month comes after {m}?", "Which month follows {m}?",
                                 "What is the month after {m}?"],
               [{"m": m} for m in MONTHS], lambda k: MONTHS[(MONTHS.index(k["m"]) + 1) % 12]),
        # level 5: simple reasoning
        family(5, "gets_more", ["{n} has {a} {o}s and gets {b} more. How many {o}s now?",
                                "{n} had {a} {o}s, then found {b} more. How many {o}s?"],
               [{"n": str(rng.choice(NAMES)), "o": str(rng.choice(OBJECTS)), "a": int(a), "b": int(b)}
                for a, b in zip(rng.integers(1, 10, 60), rng.integers(1, 10, 60))],
               lambda k: str(k["a"] + k["b"])),
        family(5, "gives_away", ["{n} has {a} {o}s and gives {b} away. How many are left?",
                                 "{n} had {a} {o}s and lost {b}. How many {o}s are left?"],
               [{"n": str(rng.choice(NAMES)), "o": str(rng.choice(OBJECTS)), "a": int(a), "b": int(b)}
                for a, b in ((int(a), int(rng.integers(0, a + 1))) for a in rng.integers(1, 10, 60))],
               lambda k: str(k["a"] - k["b"])),
        family(5, "shorter", ["{A} is taller than {B}. Who is shorter?", "{A} is taller than {B}. Which one is shorter?"],
               [{"A": a, "B": b} for a, b in sample(pairs, 40)], lambda k: k["B"]),
        family(5, "taller", ["{A} is shorter than {B}. Who is taller?", "{A} is shorter than {B}. Which one is taller?"],
               [{"A": a, "B": b} for a, b in sample(pairs, 40)], lambda k: k["B"]),
        family(5, "older", ["{A} is older than {B}. Is {B} older than {A}?", "{A} is older than {B}. Is {B} the older one?"],
               [{"A": a, "B": b} for a, b in sample(pairs, 20)], lambda k: "no"),
        family(5, "parity", ["Is {x} even or odd?", "Is the number {x} odd or even?"],
               [{"x": x} for x in range(60)], lambda k: "even" if k["x"] % 2 == 0 else "odd"),
        family(5, "tomorrow", ["If today is {d}, what day is tomorrow?", "Today is {d}. What day is tomorrow?",
                               "It is {d} today. What is tomorrow?"],
               [{"d": d} for d in DAYS], lambda k: DAYS[(DAYS.index(k["d"]) + 1) % 7]),
        family(5, "yesterday", ["If today is {d}, what day was yesterday?", "Today is {d}. What day was yesterday?",
                                "It is {d} today. What was yesterday?"],
               [{"d": d} for d in DAYS], lambda k: DAYS[(DAYS.index(k["d"]) - 1) % 7]),
    ]
    return F


def capitalize(q: str) -> str:
    return q[0].upper() + q[1:]


def build() -> dict:
    rng = np.random.default_rng(SEED)
    splits = {"train": [], "val": [], "test": []}
    seen: dict[str, str] = {}
    for level, name, templates, keys, answer in families(rng):
        order = rng.permutation(len(keys))  # key index k: a seeded shuffle of the family's keys
        for k, ki in enumerate(order):
            key = keys[ki]
            for t, template in enumerate(templates):
                q = capitalize(template.format(**key))
                a = answer(key)
                if q in seen:
                    if seen[q] != a:
                        raise SystemExit(f"question {q!r} has two answers: {seen[q]!r} and {a!r}")
                    continue
                seen[q] = a
                r = (t + k) % 10
                split = "test" if r == 0 else "val" if r == 5 else "train"
                splits[split].append({"q": q, "a": a, "level": level, "family": name})
    for s in splits.values():  # one seeded shuffle per split, so families are interleaved
        perm = rng.permutation(len(s))
        s[:] = [s[i] for i in perm]
    return splits


def main(argv: list[str]) -> None:
    out_dir = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
    splits = build()
    qs = {s: {r["q"] for r in rs} for s, rs in splits.items()}
    assert not (qs["train"] & qs["val"] or qs["train"] & qs["test"] or qs["val"] & qs["test"])
    doc = {
        "name": "TinyTalks",
        "version": 1,
        "format": "Q: {q}\nA: {a}\n",
        "levels": {str(k): v for k, v in LEVELS.items()},
        **splits,
    }
    payload = json.dumps(doc, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()
    out = (out_dir or FILES) / "tinytalks.json.gz"
    atomic_write_bytes(out, gzip_bytes(payload))
    digest = sha256_file(out)
    if out_dir is not None:
        print(f"wrote {out}: sha256 {digest}")
        return
    record_checksum(out.name, digest)
    write_datasheet(splits, out, digest)
    total = sum(len(v) for v in splits.values())
    print(f"wrote {out.name}: {total} pairs "
          f"({', '.join(f'{k} {len(v)}' for k, v in splits.items())}), {out.stat().st_size:,} bytes, sha256 {digest}")


def write_datasheet(splits: dict, out: Path, digest: str) -> None:
    fams: dict[tuple, dict] = {}
    for s, rs in splits.items():
        for r in rs:
            fams.setdefault((r["level"], r["family"]), {"train": 0, "val": 0, "test": 0, "ex": r})[s] += 1
    rows = "\n".join(
        f"| {lv} | {f} | {c['train']} | {c['val']} | {c['test']} | `{c['ex']['q']}` -> `{c['ex']['a']}` |"
        for (lv, f), c in sorted(fams.items()))
    by_level = "\n".join(
        f"| {lv} | {LEVELS[lv]} | " + " | ".join(str(sum(r['level'] == lv for r in splits[s])) for s in splits) + " |"
        for lv in LEVELS)
    allr = [r for rs in splits.values() for r in rs]
    longest_q = max(len(r["q"]) for r in allr)
    longest_a = max(len(r["a"]) for r in allr)
    chars = sorted({c for r in allr for c in r["q"] + r["a"]})
    text = f"""# TinyTalks: datasheet

TinyTalks is a synthetic question-answer dataset for the transformer milestone: short
questions in five difficulty levels whose answers a program can check. It is designed so that
a small character-level GPT trained for a few minutes on a laptop CPU can answer held-out
questions (short texts, a small alphabet, test questions that recombine training data); the
accuracy actually reached is measured by milestone 5 and recorded in its RESULTS.md.
Load it with `from tinytorch.data.datasets import load_tinytalks`.

| split | pairs |
| --- | --- |
| train | {len(splits['train']):,} |
| val | {len(splits['val']):,} |
| test | {len(splits['test']):,} |
| total | {len(allr):,} |

| level | what | train | val | test |
| --- | --- | --- | --- | --- |
{by_level}

Longest question {longest_q} characters, longest answer {longest_a}; {len(chars)} distinct characters.
Recommended training text: one pair per line group, `Q: <question>\\nA: <answer>\\n`.

## How it was made
`scripts/data/build_tinytalks.py` (seed {SEED}, no other randomness, no clock) generates every
pair from a *family*: a rule that computes the answer and 2-4 phrasings of the question.
A family's pairs form a grid of phrasings x keys (a key is the data the answer depends on:
a name, a number pair, a word). The split is diagonal: `(phrasing + key) mod 10 == 0` goes to
test, `== 5` to validation, everything else to train. Consequences:

- no question string appears in two splits (the build asserts it);
- every test key is also seen in training under another phrasing, and every phrasing is
  seen in training with other keys: a test question asks the model to recombine what it
  saw, which is what a small model trained for minutes can learn. It does not test
  knowledge absent from training.

| level | family | train | val | test | example |
| --- | --- | --- | --- | --- | --- |
{rows}

## Checking an answer
Answers are exact and short. A generated answer is correct when
`normalize(generated) == normalize(expected)`, where `normalize` lower-cases, keeps letters,
digits and spaces, and collapses runs of spaces (so `Hello, Ada!` matches `hello ada`).
`tinytorch.data.datasets.check_tinytalks_answer(generated, expected)` implements it.

## Limits
Synthetic, English only, templated: fluent-looking answers here say nothing about open-ended
dialogue. Facts (colours, animal sounds) are simple conventional ones. Names are a fixed list
of 60 short first names.

- file: `{out.name}` (gzip of one JSON object: `train`/`val`/`test` lists of
  `{{"q", "a", "level", "family"}}` records, plus `levels` and `format`), {out.stat().st_size:,} bytes
- sha256: `{digest}` (also in `scripts/data/SHA256SUMS`; the loader verifies it)

## Licence
Generated by the TinyTorch project; released with the project under the MIT licence (see
`LICENSE` in this directory).
"""
    atomic_write_bytes(FILES / "tinytalks.md", text.encode())


if __name__ == "__main__":
    main(sys.argv)
