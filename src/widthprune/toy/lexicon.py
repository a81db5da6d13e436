"""The fixed vocabulary of the toy world: plain English words by category, and name parts.

Every word here is a token of the toy tokenizer. Invented names are built from the syllables
below, so they never coincide with these words.
"""

from __future__ import annotations

ANIMALS = (
    "cat dog horse goat sheep rabbit duck goose owl fox mouse frog turtle parrot pig cow"
).split()
COLORS = "red blue green yellow black white orange purple brown gray pink silver".split()
FOODS = (
    "bread cheese apple pear plum soup rice bean carrot onion cake honey egg fish corn nut"
).split()
TOOLS = (
    "hammer rope ladder lamp knife spoon bucket basket needle brush shovel saw axe kettle "
    "candle key"
).split()
PLACES = "river hill market forest bridge lake field tower garden harbor well road".split()
JOBS = (
    "baker farmer pilot sailor painter teacher doctor tailor potter miller weaver hunter "
    "singer dancer carpenter fisher gardener merchant nurse builder cook poet judge smith"
).split()
WEATHER = "sunny rainy windy cold warm foggy".split()
OBJECTS = "coins apples stones shells cards marbles".split()

# categories a prompt may name ("name exactly 3 animals")
TOPICS = {"animals": ANIMALS, "colors": COLORS, "foods": FOODS, "tools": TOOLS}
# words that instructions put in lists, repeat, or ask to start or end with
LIST_WORDS = tuple(ANIMALS + COLORS + FOODS + TOOLS + PLACES)

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
DELIMITERS = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"), ('"', '"'))
PUNCTUATION = (".", ",", "?", ":", "!")
NUMBERS = tuple(str(i) for i in range(100))

# name parts: a person is two or three syllables, a town two syllables and a suffix
ONSETS = "b d f g k l m n p r s t v z br dr gr kr st tr".split()
VOWELS = "a e i o u".split()
CODAS = ["", "", "n", "r", "l", "s", "k", "m"]
TOWN_SUFFIXES = "ford mere holt wick dale by".split()
