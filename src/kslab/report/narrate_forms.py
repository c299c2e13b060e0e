"""The steps whose wording depends on a value, written once for every language of :mod:`kslab.report.narrate`.

A form is a function ``form(p, v)`` of a language's phrases ``p`` (phrase key -> ``str.format_map`` text)
and the step's values ``v``: it chooses and joins the phrases as the values say.  A language module
(:mod:`kslab.report.narrate_en`, :mod:`kslab.report.narrate_zh`) gives each form its phrases with
:func:`worded`, which makes the template of the step.  The forms take their names from the kernel function
or step they word; they mirror no kernel function themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .narrate_types import Template, Values

__all__ = [
    "FORMS",
    "Phrases",
    "alloc_block",
    "compound_head",
    "drain",
    "fixup_full",
    "flush_shared",
    "free_block_check",
    "grow",
    "grow_end",
    "kfree_entry",
    "push",
    "refill",
    "shuffle_prandom",
    "shuffle_precomputed",
    "slab_destroy",
    "trim",
    "worded",
    "worded_all",
]

Phrases = Mapping[str, str]
Form = Callable[[Phrases, Values], str]


def worded(form: Form, phrases: Phrases) -> Template:
    """The template of a step: ``form`` with this language's ``phrases``."""
    def template(v: Values) -> str:
        return form(phrases, v)
    return template


def worded_all(phrases: Mapping[str, Phrases]) -> dict[str, Template]:
    """A language's templates of every form, by form name, from its phrases (form name -> phrases); a
    language must word every form, and no other."""
    if phrases.keys() != FORMS.keys():
        raise ValueError(f"phrases for {sorted(phrases.keys() ^ FORMS.keys())}: not the forms of narrate_forms")
    return {name: worded(FORMS[name], p) for name, p in phrases.items()}


def kfree_entry(p: Phrases, v: Values) -> str:
    """kfree()'s entry: NULL and ZERO_SIZE_PTR (``null``) or an object (``object``)."""
    if v["obj"] <= 16:
        return p["null"].format_map(v)
    return p["object"].format_map(v)


def compound_head(p: Phrases, v: Values) -> str:
    """virt_to_head_page() of a head page: ``head``, then ``compound`` (order > 0) or ``order0``."""
    s = p["head"].format_map(v)
    if v["order"]:
        return s + p["compound"].format_map(v)
    return s + p["order0"]


def push(p: Phrases, v: Values) -> str:
    """__free_one()'s push: onto an alien array (``alien``) or this CPU's array (``local``)."""
    v["prev"] = v["avail"] - 1
    if v.get("node", -1) >= 0:
        return p["alien"].format_map(v)
    return p["local"].format_map(v)


def drain(p: Phrases, v: Values) -> str:
    """__drain_alien_cache(): ``lock``, then ``to_shared`` or ``no_shared``, then ``nothing_left`` or ``to_slabs``."""
    s = p["lock"].format_map(v)
    if v["to_shared"]:
        s += p["to_shared"].format_map(v)
    else:
        s += p["no_shared"].format_map(v)
    if not v["to_slabs"]:
        return s + p["nothing_left"]
    return s + p["to_slabs"].format_map(v)


def flush_shared(p: Phrases, v: Values) -> str:
    """cache_flusharray() moving objects to the shared array (``flush``)."""
    v["before"] = v["shared"] - v["nr"]
    return p["flush"].format_map(v)


def free_block_check(p: Phrases, v: Values) -> str:
    """free_block()'s free_limit check: over the limit (``over``) or not (``under``)."""
    if v["free_objects"] > v["free_limit"]:
        return p["over"].format_map(v)
    return p["under"].format_map(v)


def trim(p: Phrases, v: Values) -> str:
    """free_block() trimming an empty slab: without (``move``) or with its object count (``move_num``)."""
    v["after"] = v["free_objects"] - v.get("num", 0)
    if "num" not in v:
        return p["move"].format_map(v)
    return p["move_num"].format_map(v)


def slab_destroy(p: Phrases, v: Values) -> str:
    """slab_destroy(): after an RCU grace period (``rcu``) or at once (``now``)."""
    if v.get("rcu"):
        return p["rcu"].format_map(v)
    return p["now"].format_map(v)


def refill(p: Phrases, v: Values) -> str:
    """cache_alloc_refill(): ``batch``, ``untouched``, ``free_objects``, ``shared`` or ``no_shared``, ``empty``."""
    s = p["batch"].format_map(v)
    if not v["touched"]:
        s += p["untouched"]
    s += p["free_objects"].format_map(v)
    s += p["shared"].format_map(v) if v["shared"] >= 0 else p["no_shared"]
    if not v["free_objects"] and v["shared"] <= 0:
        s += p["empty"]
    return s


def alloc_block(p: Phrases, v: Values) -> str:
    """alloc_block(): ``take`` from a slab named by ``src_partial``, ``src_free`` or ``src_new``."""
    v["take"] = min(v["batch"], v["num"] - v["active"])
    v["src_text"] = {"partial": p["src_partial"], "free": p["src_free"], "new": p["src_new"]}.get(v["src"], v["src"])
    return p["take"].format_map(v)


def fixup_full(p: Phrases, v: Values) -> str:
    """fixup_slab_list() of a full slab: ``full``, then ``objfreelist`` for an OBJFREELIST slab."""
    s = p["full"].format_map(v)
    if v.get("objfreelist"):
        s += p["objfreelist"]
    return s


def grow_end(p: Phrases, v: Values) -> str:
    """cache_grow_end(): ``lock``, then ``to_free`` (no object in use) or ``placed``, then ``free_objects``."""
    s = p["lock"].format_map(v)
    if not v["active"]:
        s += p["to_free"].format_map(v)
    else:
        s += p["placed"].format_map(v)
    return s + p["free_objects"].format_map(v)


def grow(p: Phrases, v: Values) -> str:
    """cache_grow_begin(): ``slab``, then ``shuffled`` or ``in_order``."""
    s = p["slab"].format_map(v)
    return s + (p["shuffled"] if v.get("shuffled") else p["in_order"])


def shuffle_precomputed(p: Phrases, v: Values) -> str:
    """shuffle_freelist() from the cache's random_seq: ``seq``, ``objfreelist`` if any, ``head``."""
    s = p["seq"].format_map(v)
    if v.get("objfreelist") is not None:
        s += p["objfreelist"].format_map(v)
    return s + p["head"].format_map(v)


def shuffle_prandom(p: Phrases, v: Values) -> str:
    """shuffle_freelist() with a per-slab PRNG: ``prng``, ``objfreelist`` if any, ``head``."""
    s = p["prng"].format_map(v)
    if v.get("objfreelist") is not None:
        s += p["objfreelist"].format_map(v)
    return s + p["head"].format_map(v)


#: Every form by name: the keys of a language's ``_PHRASES``.
FORMS: dict[str, Form] = {
    "kfree_entry": kfree_entry, "compound_head": compound_head, "push": push, "drain": drain,
    "flush_shared": flush_shared, "free_block_check": free_block_check, "trim": trim, "slab_destroy": slab_destroy,
    "refill": refill, "alloc_block": alloc_block, "fixup_full": fixup_full, "grow_end": grow_end, "grow": grow,
    "shuffle_precomputed": shuffle_precomputed, "shuffle_prandom": shuffle_prandom,
}
