"""The steps whose wording depends on a value are written once (report/narrate_forms.py) and worded by each
language's phrases: both languages word every form with the same phrase keys, and every branch of every form
renders in both languages without a missing phrase or an unfilled placeholder."""

from __future__ import annotations

import itertools
import re

import pytest

from kslab.report import narrate_en, narrate_forms, narrate_zh
from kslab.report.narrate_types import Values

LANGS = {"en": narrate_en._PHRASES, "zh": narrate_zh._PHRASES}

# the step values of every form, with a choice of values for each field a form branches on
BASE = dict(obj=0x1000, cpu=1, node=0, pfn=0x55, order=0, avail=5, limit=120, to_shared=3, to_slabs=2, shared=4, nr=2,
            room=3, last=1, free_objects=10, free_limit=5, num=8, rcu=True, batch=16, touched=0, active=2,
            src="partial", free=6, objfreelist=3, total_slabs=4, pages_en="1 page", pages=1, addr=0x2000, colour=64,
            placement="on-slab", shuffled=True, rand=7, start=3, head="[1, 2]")
BRANCHES = {
    "obj": [0x10, 0x1000], "order": [0, 2], "node": [-1, 0], "to_shared": [0, 3], "to_slabs": [0, 2],
    "free_objects": [0, 10], "rcu": [False, True], "touched": [0, 1], "shared": [-1, 0, 4],
    "src": ["partial", "free", "new"], "objfreelist": [None, 0, 3], "active": [0, 2], "shuffled": [False, True],
}
UNFILLED = re.compile(r"\{[a-z_]+(?::[^}]*)?\}")


def test_every_language_words_every_form_with_the_same_phrase_keys() -> None:
    for lang, phrases in LANGS.items():
        assert phrases.keys() == narrate_forms.FORMS.keys(), lang
    for form in narrate_forms.FORMS:
        assert LANGS["en"][form].keys() == LANGS["zh"][form].keys(), form


def test_worded_all_refuses_phrases_for_a_form_that_does_not_exist() -> None:
    with pytest.raises(ValueError, match="kfree_exit"):
        narrate_forms.worded_all({**narrate_en._PHRASES, "kfree_exit": {}})


@pytest.mark.parametrize("lang", sorted(LANGS))
@pytest.mark.parametrize("form", sorted(narrate_forms.FORMS))
def test_every_branch_renders_every_placeholder(lang: str, form: str) -> None:
    template = narrate_forms.worded(narrate_forms.FORMS[form], LANGS[lang][form])
    assert callable(template)
    seen = set()
    for field, drop_num in itertools.product(BRANCHES, (False, True)):
        for value in BRANCHES[field]:
            v = dict(BASE, **{field: value})
            if drop_num:
                del v["num"]
            try:
                text = template(Values(v))
            except KeyError as e:  # a value this form reads and the step lacks (num dropped): only "num"
                assert e.args == ("num",), (lang, form, field, value)
                continue
            assert text and not UNFILLED.search(text), (lang, form, text)
            seen.add(text)
    assert len(seen) >= 2 or form == "flush_shared", f"{form}: the branches give one text only"


def test_the_forms_choose_as_the_values_say() -> None:
    en = narrate_en.EN
    push = en[("__free_one", "push")]
    assert callable(push)
    alien = push(Values(obj=0x40, avail=3, limit=12, node=1))
    local = push(Values(obj=0x40, avail=3, limit=12, node=-1))
    assert alien.startswith("alien array for node 1: entry[2] = 0x40") and local.startswith("ac->entry[2] = 0x40")
    refill = en[("cache_alloc_refill", "refill")]
    assert callable(refill)
    assert refill(Values(batch=16, touched=1, free_objects=0, shared=-1)) == (
        "batchcount 16; node free_objects 0, no shared array: nothing to take on this node")
