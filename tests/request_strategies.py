"""Hypothesis strategies for requests a hostile or careless caller could send (tests and bench).

Three layers, mixed: arbitrary JSON-like values; objects shaped like the contract whose values
are sometimes right and sometimes anything; and the text of either, sometimes cut or corrupted.
"""

from __future__ import annotations

import json
import math

from hypothesis import strategies as st

from plitka.form import FORM_DEFAULTS
from plitka.palette import palette
from plitka.params import TOP_LEVEL_KEYS
from plitka.params_overrides import OVERRIDE_RULES

NAMES = sorted({name for c in palette() for name in (c.code, c.name_en, c.name_ru)})
TRICKY_TEXT = st.sampled_from(["", " ", "\u200b", "\u0430", "#", "#FFF", "#12345G", "NaN", "1e400", "\x00"])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | TRICKY_TEXT
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)

color_names = st.sampled_from(NAMES) | st.text(max_size=20) | TRICKY_TEXT
proportions = (
    st.integers(min_value=-5, max_value=120)
    | st.floats(min_value=-1, max_value=101)
    | st.sampled_from([0.5, 0.25, 60, 40, 100, 1])
    | json_values
)
color_entries = st.fixed_dictionaries(
    {},
    optional={
        "name": color_names,
        "hex": st.from_regex(r"#[0-9A-Fa-f]{6}", fullmatch=True) | json_values,
        "color": color_names,
        "proportion": proportions,
        "percentage": proportions,
        "extra": json_values,
    },
)
override_values = st.fixed_dictionaries(
    {},
    optional={
        key: json_values
        | st.floats(min_value=-10, max_value=2000)
        | st.integers(min_value=-10, max_value=2000)
        | st.sampled_from(["canny", "softedge", "hed", "lineart", "none", "auto"])
        for key in OVERRIDE_RULES
    },
)
contract_shaped = st.fixed_dictionaries(
    {},
    optional={
        "colors": st.lists(color_entries, max_size=6) | json_values,
        "angle": st.floats() | st.integers() | json_values,
        "quality": st.sampled_from(["draft", "preview", "standard", "high", "DRAFT ", "best"]) | json_values,
        "seed": st.integers(min_value=-2, max_value=2**33) | json_values,
        "granule_size": st.sampled_from(["small", "medium", "large", "huge"]) | json_values,
        "overrides": override_values | json_values,
        "angel": json_values,
    },
)


@st.composite
def plausible_requests(draw) -> dict:
    """Mostly valid requests (1-4 distinct colours summing to 100 or 1) with a few random settings."""
    codes = draw(st.lists(st.sampled_from([c.code for c in palette()]), min_size=1, max_size=4, unique=True))
    unit = draw(st.sampled_from([100, 1]))
    shares = [unit / len(codes)] * len(codes)
    request = {
        "colors": [{"name": code, "proportion": share} for code, share in zip(codes, shares, strict=True)]
    }
    request.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "angle": st.floats(min_value=-1e6, max_value=1e6),
                    "quality": st.sampled_from(["draft", "preview", "standard", "high"]),
                    "seed": st.integers(min_value=-1, max_value=2**32 - 1),
                    "granule_size": st.sampled_from(["small", "medium", "large"]),
                    "overrides": st.fixed_dictionaries(
                        {},
                        optional={
                            "guidance_scale": st.floats(min_value=1, max_value=20),
                            "use_controlnet": st.booleans(),
                            "width": st.sampled_from([512, 768, 1024]),
                            "strength": st.floats(min_value=0.05, max_value=1),
                        },
                    ),
                },
            )
        )
    )
    return request


request_objects = (
    plausible_requests()
    | contract_shaped
    | st.dictionaries(st.sampled_from(TOP_LEVEL_KEYS) | st.text(max_size=8), json_values)
)


def _to_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


@st.composite
def corrupted_text(draw) -> str:
    text = _to_text(draw(request_objects))
    if not text:
        return text
    cut = draw(st.integers(min_value=0, max_value=len(text)))
    insert = draw(st.sampled_from(["", ",", "[", "{", '"', "}", "NaN", "\\u", "\ud800", ": 1"]))
    return text[:cut] + insert + text[cut + draw(st.integers(min_value=0, max_value=2)) :]


raw_texts = (
    request_objects.map(_to_text) | corrupted_text() | st.text(max_size=50) | json_values.map(_to_text)
)
raw_requests = (
    request_objects
    | raw_texts
    | st.builds(lambda inner: {"params_json": inner}, request_objects.map(_to_text) | json_values)
)

form_inputs = st.fixed_dictionaries(
    {
        # Every field Cog passes (new ones at their defaults), then the ones varied here.
        **{name: st.just(default) for name, default in FORM_DEFAULTS.items()},
        **{f"color_{i}": st.sampled_from(["", "black", "white", "red", "sky blue"]) for i in range(1, 5)},
        **{f"proportion_{i}": st.sampled_from([0.0, 25.0, 40.0, 60.0, 100.0]) for i in range(1, 5)},
        "angle": st.floats(allow_nan=False).filter(math.isfinite) | st.just(FORM_DEFAULTS["angle"]),
        "quality": st.sampled_from(["draft", "preview", "standard", "high"]),
        "seed": st.integers(min_value=-1, max_value=2**32 - 1),
        "granule_size": st.sampled_from(["small", "medium", "large"]),
        "controlnet": st.sampled_from(["auto", "canny", "softedge", "hed", "lineart", "off"]),
        "color_lock": st.sampled_from([1.0, 0.0, 0.5]),
    }
)
