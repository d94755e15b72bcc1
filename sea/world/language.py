"""Words about scenes: captions, pretraining instructions, questions with answers, text-only Q/A.

Every question is asked only when its answer is unambiguous from the scene (for example "What color
is the star?" only when the image holds exactly one star). Each generator has several phrasings; the
chosen phrasing is recorded in `QA.template` so variety can be measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sea.world.config import COUNT_WORDS, POSITION_WORDS, WorldConfig
from sea.world.scene import Scene, WorldObject, position_is_clear

SHORT_SUFFIX = "\nAnswer the question using a single word or phrase."
MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
YES_NO_SUFFIX = " Please answer yes or no."
IMAGE_TOKEN = "<image>"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# LLaVA-558K's brief-description instructions (the human turn of the pretraining captions).
PRETRAIN_INSTRUCTIONS: tuple[str, ...] = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Relay a brief, clear account of the picture shown.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
)

# How a position word reads inside a sentence ("The star is <phrase> of the image.").
POSITION_PHRASES: dict[str, str] = {
    "top left": "in the top left corner",
    "top": "at the top",
    "top right": "in the top right corner",
    "left": "on the left side",
    "center": "in the center",
    "right": "on the right side",
    "bottom left": "in the bottom left corner",
    "bottom": "at the bottom",
    "bottom right": "in the bottom right corner",
}


# ----------------------------------------------------------------------------- small helpers


def pick(rng: np.random.Generator, items):
    """One element of a non-empty sequence."""
    return items[int(rng.integers(len(items)))]


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def plural(noun: str) -> str:
    return noun + "es" if noun.endswith(("s", "x", "ch", "sh")) else noun + "s"


def join_list(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def count_phrase(n: int, singular: str) -> str:
    """'no stars', 'one star', 'three stars'."""
    if n == 0:
        return f"no {plural(singular)}"
    return f"{COUNT_WORDS[n]} {singular if n == 1 else plural(singular)}"


def there_be(n: int) -> str:
    return "There is" if n == 1 else "There are"


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def position_sentence(pos: str) -> str:
    return f"{POSITION_PHRASES[pos]} of the image"


def refer(scene: Scene, obj: WorldObject, rng: np.random.Generator, avoid: str = "") -> str:
    """An unambiguous name for `obj` in `scene` ('star', 'red object' or 'red star').

    `avoid='color'` never names the colour, `avoid='shape'` never the shape (the question asks it).
    """
    options = []
    if avoid != "color" and avoid != "shape":
        options.append(obj.phrase)
    if avoid != "shape" and scene.shape_count()[obj.shape] == 1:
        options.append(obj.shape)
    if avoid != "color" and scene.color_count()[obj.color] == 1:
        options.append(f"{obj.color} object")
    return pick(rng, options) if options else ""


def absent_pair(
    scene: Scene, cfg: WorldConfig, rng: np.random.Generator, hard: bool
) -> tuple[str, str] | None:
    """A (colour, shape) not in the scene; `hard` prefers one that shares a colour or a shape with a
    present object."""
    present = scene.pairs()
    absent = [(c, s) for c in cfg.colors for s in cfg.shapes if (c, s) not in present]
    if not absent:
        return None
    if hard:
        colors = {c for c, _ in present}
        shapes = {s for _, s in present}
        close = [(c, s) for c, s in absent if c in colors or s in shapes]
        if close:
            return pick(rng, close)
    return pick(rng, absent)


# ----------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class QA:
    """One question about a scene. `short` is the single word/phrase answer, `long` a full sentence.

    `domain` names the answer space for multiple choice ('color', 'shape', 'count', 'position'), or ''
    when the question cannot be turned into multiple choice.
    """

    kind: str
    template: str
    question: str
    short: str
    long: str
    domain: str = ""


COLOR_Q = (
    "What color is the {ref}?",
    "What is the color of the {ref}?",
    "Which color does the {ref} have?",
    "What colour is the {ref} in the image?",
    "Can you tell me the color of the {ref}?",
)
SHAPE_Q = (
    "What shape is the {ref}?",
    "What is the shape of the {ref}?",
    "Which shape does the {ref} have?",
    "What kind of shape is the {ref}?",
    "Can you name the shape of the {ref}?",
)
COUNT_ALL_Q = (
    "How many objects are there in the image?",
    "How many shapes can you see?",
    "What is the number of objects in the picture?",
    "How many shapes are shown in this image?",
)
COUNT_COLOR_Q = (
    "How many {color} objects are there?",
    "How many {color} shapes are in the image?",
    "What is the number of {color} objects in the picture?",
)
COUNT_SHAPE_Q = (
    "How many {shapes} are there in the image?",
    "How many {shapes} can you see?",
    "What is the number of {shapes} in the picture?",
)
POSITION_Q = (
    "Where is the {ref}?",
    "In which part of the image is the {ref}?",
    "Where is the {ref} located in the image?",
    "Which region of the picture contains the {ref}?",
)
RELATION_X_Q = (
    "Is the {a} to the left or to the right of the {b}?",
    "Is the {a} on the left or the right side of the {b}?",
    "Which side of the {b} is the {a} on, left or right?",
)
RELATION_Y_Q = (
    "Is the {a} above or below the {b}?",
    "Is the {a} located above or below the {b}?",
    "Relative to the {b}, is the {a} above or below it?",
)
EXISTENCE_Q = (
    "Is there {a_obj} in the image?",
    "Does the image contain {a_obj}?",
    "Can you see {a_obj} in the picture?",
    "Is {a_obj} present in this image?",
)


def _choose_template(rng: np.random.Generator, templates: tuple[str, ...], name: str) -> tuple[str, str]:
    i = int(rng.integers(len(templates)))
    return templates[i], f"{name}{i}"


def ask_color(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """'What color is the star?' about an object whose shape is unique in the image."""
    objs = [o for o in scene.objects if scene.shape_count()[o.shape] == 1]
    if not objs:
        return None
    o = pick(rng, objs)
    ref = refer(scene, o, rng, avoid="color")
    tpl, tid = _choose_template(rng, COLOR_Q, "color")
    return QA("color", tid, tpl.format(ref=ref), o.color, f"The {ref} is {o.color}.", "color")


def ask_shape(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """'What shape is the red object?' about an object whose colour is unique in the image."""
    objs = [o for o in scene.objects if scene.color_count()[o.color] == 1]
    if not objs:
        return None
    o = pick(rng, objs)
    ref = refer(scene, o, rng, avoid="shape")
    tpl, tid = _choose_template(rng, SHAPE_Q, "shape")
    return QA("shape", tid, tpl.format(ref=ref), o.shape, f"The {ref} is {with_article(o.shape)}.", "shape")


def ask_count(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """How many objects in all, of one colour, or of one shape (0 is a valid answer for the last two)."""
    mode = int(rng.integers(3))
    if mode == 0:
        n = len(scene.objects)
        tpl, tid = _choose_template(rng, COUNT_ALL_Q, "count_all")
        return QA(
            "count", tid, tpl, str(n), f"{there_be(n)} {count_phrase(n, 'object')} in the image.", "count"
        )
    if mode == 1:
        present = sorted(scene.color_count())
        color = pick(rng, present) if rng.random() < 0.75 else pick(rng, cfg.colors)
        n = scene.color_count()[color]
        tpl, tid = _choose_template(rng, COUNT_COLOR_Q, "count_color")
        noun = f"{color} object"
        return QA(
            "count",
            tid,
            tpl.format(color=color),
            str(n),
            f"{there_be(n)} {count_phrase(n, noun)} in the image.",
            "count",
        )
    present = sorted(scene.shape_count())
    shape = pick(rng, present) if rng.random() < 0.75 else pick(rng, cfg.shapes)
    n = scene.shape_count()[shape]
    tpl, tid = _choose_template(rng, COUNT_SHAPE_Q, "count_shape")
    return QA(
        "count",
        tid,
        tpl.format(shapes=plural(shape)),
        str(n),
        f"{there_be(n)} {count_phrase(n, shape)} in the image.",
        "count",
    )


def ask_position(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """'Where is the red star?' -> 'top left', for objects clearly inside one cell of the 3x3 grid."""
    objs = [o for o in scene.objects if position_is_clear(*o.center, scene.image_size)]
    if not objs:
        return None
    o = pick(rng, objs)
    ref = refer(scene, o, rng)
    tpl, tid = _choose_template(rng, POSITION_Q, "position")
    return QA(
        "position",
        tid,
        tpl.format(ref=ref),
        o.position,
        f"The {ref} is {position_sentence(o.position)}.",
        "position",
    )


def separated_pairs(scene: Scene) -> list[tuple[WorldObject, WorldObject, str]]:
    """(a, b, relation) for object pairs whose boxes do not overlap along an axis: relation of a to b
    is 'left', 'right', 'above' or 'below'."""
    out = []
    for a in scene.objects:
        for b in scene.objects:
            if a.index == b.index:
                continue
            if a.bbox[2] <= b.bbox[0]:
                out.append((a, b, "left"))
            elif b.bbox[2] <= a.bbox[0]:
                out.append((a, b, "right"))
            if a.bbox[3] <= b.bbox[1]:
                out.append((a, b, "above"))
            elif b.bbox[3] <= a.bbox[1]:
                out.append((a, b, "below"))
    return out


RELATION_SENTENCE = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}


def ask_relation(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """'Is the red star to the left or to the right of the blue circle?' for clearly separated pairs."""
    pairs = separated_pairs(scene)
    if not pairs:
        return None
    a, b, rel = pick(rng, pairs)
    ra, rb = refer(scene, a, rng), refer(scene, b, rng)
    templates, name = (
        (RELATION_X_Q, "relation_x") if rel in ("left", "right") else (RELATION_Y_Q, "relation_y")
    )
    tpl, tid = _choose_template(rng, templates, name)
    return QA("relation", tid, tpl.format(a=ra, b=rb), rel, f"The {ra} is {RELATION_SENTENCE[rel]} the {rb}.")


def ask_existence(scene: Scene, cfg: WorldConfig, rng: np.random.Generator) -> QA | None:
    """'Is there a red star in the image?': half the time about a present object, else an absent one."""
    tpl, tid = _choose_template(rng, EXISTENCE_Q, "existence")
    if rng.random() < 0.5:
        o = pick(rng, scene.objects)
        phrase = o.phrase
        return QA(
            "existence",
            tid,
            tpl.format(a_obj=with_article(phrase)),
            "Yes",
            f"Yes, there is {with_article(phrase)} in the image.",
        )
    pair = absent_pair(scene, cfg, rng, hard=bool(rng.random() < 0.5))
    if pair is None:
        return None
    phrase = f"{pair[0]} {pair[1]}"
    return QA(
        "existence",
        tid,
        tpl.format(a_obj=with_article(phrase)),
        "No",
        f"No, there is no {phrase} in the image.",
    )


ASKERS: dict[str, Callable[[Scene, WorldConfig, np.random.Generator], QA | None]] = {
    "color": ask_color,
    "shape": ask_shape,
    "count": ask_count,
    "position": ask_position,
    "relation": ask_relation,
    "existence": ask_existence,
}


def answer_domain(domain: str, cfg: WorldConfig) -> list[str]:
    """All possible answers of a multiple-choice domain."""
    if domain == "color":
        return list(cfg.colors)
    if domain == "shape":
        return list(cfg.shapes)
    if domain == "position":
        return list(POSITION_WORDS)
    if domain == "count":
        return [str(i) for i in range(0, max(cfg.max_objects, cfg.mmbench_options) + 1)]
    raise ValueError(f"no multiple-choice domain {domain!r}")


def make_options(
    qa: QA, cfg: WorldConfig, rng: np.random.Generator, n_options: int
) -> tuple[list[str], int] | None:
    """Shuffled options containing the right answer, and its index; None when the domain is too small."""
    if not qa.domain:
        return None
    domain = answer_domain(qa.domain, cfg)
    others = [v for v in domain if v != qa.short]
    if len(others) < n_options - 1:
        return None
    chosen = [others[int(i)] for i in rng.choice(len(others), size=n_options - 1, replace=False)]
    options = chosen + [qa.short]
    order = rng.permutation(n_options)
    options = [options[int(i)] for i in order]
    return options, options.index(qa.short)


def format_choices(question: str, options: list[str]) -> str:
    """LLaVA's multiple-choice prompt: question, 'A. ...' lines, letter instruction."""
    lines = [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    return question + "\n" + "\n".join(lines) + MC_SUFFIX


def instruction_turn(
    scene: Scene, cfg: WorldConfig, rng: np.random.Generator
) -> tuple[str, str, str, str] | None:
    """One (question, answer, template id, fact) turn in a random style: short, long or multiple choice.

    `fact` (the long answer) identifies what is asked, so a conversation can avoid asking it twice."""
    kinds = list(ASKERS)
    kind = pick(rng, kinds)
    qa = ASKERS[kind](scene, cfg, rng)
    if qa is None:
        return None
    style = rng.random()
    if style < cfg.multiple_choice_fraction and qa.domain:
        made = make_options(qa, cfg, rng, min(cfg.mmbench_options, len(answer_domain(qa.domain, cfg))))
        if made is not None:
            options, idx = made
            return format_choices(qa.question, options), LETTERS[idx], qa.template + "_mc", qa.long
    if style < cfg.multiple_choice_fraction + cfg.short_answer_fraction:
        return qa.question + SHORT_SUFFIX, qa.short, qa.template + "_short", qa.long
    return qa.question, qa.long, qa.template + "_long", qa.long


def image_conversation(
    scene: Scene, cfg: WorldConfig, rng: np.random.Generator
) -> tuple[list[dict], list[str]]:
    """A 1..max_turns LLaVA conversation about the scene ('<image>\\n' in the first human turn only),
    and the template ids used."""
    n_turns = int(rng.integers(1, cfg.max_turns + 1))
    turns: list[dict] = []
    templates: list[str] = []
    asked: set[str] = set()
    for _ in range(n_turns):
        for _attempt in range(12):
            made = instruction_turn(scene, cfg, rng)
            if made is None or made[3] in asked:
                continue
            q, a, tid, fact = made
            asked.add(fact)
            if not turns:
                q = f"{IMAGE_TOKEN}\n{q}"
            turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
            templates.append(tid)
            break
    if not turns:  # every draw failed (very unlikely): ask the total count, which always has an answer
        n = len(scene.objects)
        turns = [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{COUNT_ALL_Q[0]}"},
            {
                "from": "gpt",
                "value": f"{there_be(n)} {count_phrase(n, 'object')} in the image.",
            },
        ]
        templates = ["count_all0_long"]
    return turns, templates


# ----------------------------------------------------------------------------- captions


def _obj(o: WorldObject, size: bool = False, pos: bool = False, art: bool = True) -> str:
    text = f"{o.size} {o.phrase}" if size else o.phrase
    if art:
        text = with_article(text)
    if pos:
        text += f" {POSITION_PHRASES[o.position]}"
    return text


def _cap_list_on_bg(s: Scene, rng: np.random.Generator, size: bool) -> str:
    return capitalize(join_list([_obj(o, size) for o in s.objects])) + f" on a {s.background} background."


def _cap_count_colon(s: Scene, rng: np.random.Generator, size: bool) -> str:
    n = len(s.objects)
    return (
        f"{capitalize(count_phrase(n, 'shape'))} on a {s.background} background: "
        f"{join_list([_obj(o, size) for o in s.objects])}."
    )


def _cap_there_positions(s: Scene, rng: np.random.Generator, size: bool) -> str:
    items = join_list([_obj(o, size, pos=True) for o in s.objects])
    return f"There is {items}, on a {s.background} background."


def _cap_picture_shows(s: Scene, rng: np.random.Generator, size: bool) -> str:
    items = join_list([_obj(o, size) for o in s.objects])
    return f"This picture shows {items} against a {s.background} backdrop."


def _cap_same_color(s: Scene, rng: np.random.Generator, size: bool) -> str:
    n = len(s.objects)
    colors = {o.color for o in s.objects}
    if n >= 2 and len(colors) == 1:
        color = s.objects[0].color
        shapes = join_list([with_article(f"{o.size} {o.shape}" if size else o.shape) for o in s.objects])
        return f"{capitalize(COUNT_WORDS[n])} {color} shapes on {s.background}: {shapes}."
    noun = "colored shape" if n == 1 else "colored shapes"
    items = join_list([_obj(o, size) for o in s.objects])
    return f"{capitalize(COUNT_WORDS[n])} {noun} on {s.background}: {items}."


def _cap_terse(s: Scene, rng: np.random.Generator, size: bool) -> str:
    return f"{join_list([_obj(o, size, art=False) for o in s.objects])} on {s.background}"


def _cap_image_with(s: Scene, rng: np.random.Generator, size: bool) -> str:
    return (
        f"An image with a {s.background} background containing "
        f"{join_list([_obj(o, size, pos=bool(rng.random() < 0.5)) for o in s.objects])}."
    )


def _cap_sentences(s: Scene, rng: np.random.Generator, size: bool) -> str:
    parts = [f"The {o.phrase} is {position_sentence(o.position)}." for o in s.objects]
    return " ".join(parts) + f" The background is {s.background}."


def _cap_drawing(s: Scene, rng: np.random.Generator, size: bool) -> str:
    items = join_list([_obj(o, size) for o in s.objects])
    return f"A simple drawing of {items} over a {s.background} background."


def _cap_count_semicolon(s: Scene, rng: np.random.Generator, size: bool) -> str:
    n = len(s.objects)
    return (
        f"{capitalize(count_phrase(n, 'object'))}: {join_list([_obj(o, size) for o in s.objects])}; "
        f"the background is {s.background}."
    )


CAPTION_TEMPLATES: tuple[Callable[[Scene, np.random.Generator, bool], str], ...] = (
    _cap_list_on_bg,
    _cap_count_colon,
    _cap_there_positions,
    _cap_picture_shows,
    _cap_same_color,
    _cap_terse,
    _cap_image_with,
    _cap_sentences,
    _cap_drawing,
    _cap_count_semicolon,
)


def caption(scene: Scene, rng: np.random.Generator) -> tuple[str, int]:
    """A caption naming every object's colour and shape (sometimes also size, position, count), and
    the index of its template."""
    i = int(rng.integers(len(CAPTION_TEMPLATES)))
    size = bool(rng.random() < 0.35)
    return CAPTION_TEMPLATES[i](scene, rng, size), i


def pretrain_prompt(rng: np.random.Generator) -> str:
    """A LLaVA-558K-style human turn: an instruction with '<image>' before or after it."""
    text = pick(rng, PRETRAIN_INSTRUCTIONS)
    return f"{IMAGE_TOKEN}\n{text}" if rng.random() < 0.5 else f"{text}\n{IMAGE_TOKEN}"


def object_description(scene: Scene, rng: np.random.Generator) -> str:
    """One sentence about one object: size, colour, shape and place."""
    o = pick(rng, scene.objects)
    sized = f"{o.size} {o.phrase}"
    forms = (
        f"The {o.phrase} is {o.size} and sits {position_sentence(o.position)}.",
        f"{capitalize(with_article(o.size))} {o.phrase} appears {position_sentence(o.position)}.",
        f"{capitalize(POSITION_PHRASES[o.position])} of the image there is {with_article(sized)}.",
    )
    return pick(rng, forms)


# ----------------------------------------------------------------------------- text-only Q/A

SIDES = {"triangle": 3, "square": 4, "diamond": 4, "pentagon": 5, "hexagon": 6}
OTHER_SHAPE_FACTS = {
    "circle": ("corners", 0, "A circle has no corners; it is perfectly round."),
    "star": ("points", 5, "A star usually has five points."),
    "cross": ("arms", 4, "A cross has four arms."),
}
MIXES = {
    ("red", "yellow"): "orange",
    ("blue", "yellow"): "green",
    ("red", "blue"): "purple",
    ("red", "white"): "pink",
}

SIDES_Q = (
    "How many sides does a {shape} have?",
    "What is the number of sides of a {shape}?",
    "A {shape} has how many sides?",
)
PARTS_Q = (
    "How many {part} does a {shape} have?",
    "What is the number of {part} of a {shape}?",
    "A {shape} has how many {part}?",
)
CATEGORY_Q = (
    "Is {word} a color or a shape?",
    "Is the word '{word}' a color or a shape?",
    "Does {word} name a color or a shape?",
)
WHICH_Q = (
    "Which of these is a {cat}: {x} or {y}?",
    "Which word names a {cat}, {x} or {y}?",
    "Between {x} and {y}, which one is a {cat}?",
)
MIX_Q = (
    "What color do you get when you mix {a} and {b}?",
    "Mixing {a} and {b} gives which color?",
    "If you combine {a} paint with {b} paint, what color do you get?",
)
LIST_Q = (
    "How many colors are in this list: {items}?",
    "Count the colors in this list: {items}.",
    "What is the number of colors named here: {items}?",
)


def text_qa(cfg: WorldConfig, rng: np.random.Generator) -> QA:
    """A question about shapes or colours that needs no image."""
    kinds = ["category", "which", "list"]
    if any(s in SIDES or s in OTHER_SHAPE_FACTS for s in cfg.shapes):
        kinds.append("sides")
    mixes = [(k, v) for k, v in MIXES.items() if all(w in cfg.colors for w in (*k, v))]
    if mixes:
        kinds.append("mix")
    kind = pick(rng, kinds)
    if kind == "sides":
        shape = pick(rng, [s for s in cfg.shapes if s in SIDES or s in OTHER_SHAPE_FACTS])
        if shape in SIDES:
            n = SIDES[shape]
            tpl, tid = _choose_template(rng, SIDES_Q, "text_sides")
            return QA(
                "text",
                tid,
                tpl.format(shape=shape),
                str(n),
                f"{capitalize(with_article(shape))} has {COUNT_WORDS[n]} sides.",
            )
        part, n, sentence = OTHER_SHAPE_FACTS[shape]
        tpl, tid = _choose_template(rng, PARTS_Q, "text_parts")
        return QA("text", tid, tpl.format(part=part, shape=shape), str(n), sentence)
    if kind == "category":
        word = pick(rng, list(cfg.colors) + list(cfg.shapes))
        cat = "color" if word in cfg.colors else "shape"
        tpl, tid = _choose_template(rng, CATEGORY_Q, "text_category")
        return QA("text", tid, tpl.format(word=word), cat, f"{capitalize(word)} is {article(cat)} {cat}.")
    if kind == "which":
        cat = pick(rng, ["color", "shape"])
        c, s = pick(rng, cfg.colors), pick(rng, cfg.shapes)
        x, y = (c, s) if rng.random() < 0.5 else (s, c)
        ans = c if cat == "color" else s
        tpl, tid = _choose_template(rng, WHICH_Q, "text_which")
        return QA(
            "text", tid, tpl.format(cat=cat, x=x, y=y), ans, f"{capitalize(ans)} is {article(cat)} {cat}."
        )
    if kind == "mix":
        (a, b), result = pick(rng, mixes)
        tpl, tid = _choose_template(rng, MIX_Q, "text_mix")
        return QA("text", tid, tpl.format(a=a, b=b), result, f"Mixing {a} and {b} gives {result}.")
    k = int(rng.integers(1, len(cfg.colors) + 1))
    items = [cfg.colors[int(i)] for i in rng.choice(len(cfg.colors), size=k, replace=False)]
    tpl, tid = _choose_template(rng, LIST_Q, "text_list")
    return QA(
        "text",
        tid,
        tpl.format(items=", ".join(items)),
        str(k),
        f"{there_be(k)} {count_phrase(k, 'color')} in the list.",
    )


def text_conversation(cfg: WorldConfig, rng: np.random.Generator) -> tuple[list[dict], list[str]]:
    """A text-only conversation (no '<image>'), 1..max_turns turns."""
    n_turns = int(rng.integers(1, cfg.max_turns + 1))
    turns: list[dict] = []
    templates: list[str] = []
    asked: set[str] = set()
    for _ in range(n_turns):
        for _attempt in range(12):
            qa = text_qa(cfg, rng)
            short = bool(rng.random() < 0.4)
            q = qa.question + SHORT_SUFFIX if short else qa.question
            if qa.long in asked:
                continue
            asked.add(qa.long)
            turns += [{"from": "human", "value": q}, {"from": "gpt", "value": qa.short if short else qa.long}]
            templates.append(qa.template)
            break
    return turns, templates


# ----------------------------------------------------------------------------- corpus


def corpus_line(scenes: list[Scene], cfg: WorldConfig, rng: np.random.Generator) -> str:
    """One line of the LM corpus: a caption, a question with its answer, an object description or a fact."""
    r = rng.random()
    if r < 0.15:
        qa = text_qa(cfg, rng)
        return f"{qa.question} {qa.long}"
    scene = pick(rng, scenes)
    if r < 0.55:
        text, _ = caption(scene, rng)
        return text if text.endswith(".") else capitalize(text) + "."
    if r < 0.9:
        qa = None
        while qa is None:
            qa = ASKERS[pick(rng, list(ASKERS))](scene, cfg, rng)
        return f"{qa.question} {qa.long}"
    return object_description(scene, rng)
