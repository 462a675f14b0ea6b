"""Validation rules for blogs and entries, edits, ordering helpers, origin checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pushhub.errors import Invalid
from pushhub.model import (
    LIMITS,
    BlogDoc,
    EntryDoc,
    new_entry,
    origin_allowed,
    patch_entry,
    put_blog,
    valid_entry_id,
    valid_slug,
)

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
IMAGE = {"url": "https://cdn.example/a.jpg", "caption": "Runners", "credit": "AP"}


def invalid(field: str) -> Any:
    """Expect `Invalid` naming `field` (checked after the block)."""
    return pytest.raises(Invalid, match=re.escape(field) + ":")


def assert_invalid(fn: Any, *args: Any, field: str, **kwargs: Any) -> Invalid:
    with pytest.raises(Invalid) as info:
        fn(*args, **kwargs)
    assert info.value.field == field, info.value.message
    assert info.value.status == 422
    assert info.value.to_json()["field"] == field
    assert info.value.to_json()["error"] == "invalid"
    return info.value


def make(**fields: Any) -> EntryDoc:
    return new_entry({"body": "Hello *world*", **fields}, editor="Ana Ruiz")


# -- new_entry ----------------------------------------------------------------------------------


def test_new_entry_defaults() -> None:
    e = new_entry({"body": "  Hello *world*  "}, editor="Ana Ruiz")
    assert set(e) == {
        "id", "created_at", "updated_at", "author", "title", "body", "html", "image",
        "pinned", "key",
    }  # fmt: skip
    assert valid_entry_id(e["id"])
    assert ISO.fullmatch(e["created_at"])
    assert e["created_at"] == e["updated_at"]
    assert e["author"] == "Ana Ruiz"
    assert e["title"] is None
    assert e["body"] == "Hello *world*"
    assert e["html"] == "<p>Hello <em>world</em></p>"
    assert e["image"] is None
    assert e["pinned"] is False
    assert e["key"] is False


def test_new_entry_all_fields() -> None:
    e = make(title=" Half-way ", author="Bo", image=IMAGE, pinned=True, key=True)
    assert (e["title"], e["author"], e["pinned"], e["key"]) == ("Half-way", "Bo", True, True)
    assert e["image"] == IMAGE


def test_new_entry_given_id() -> None:
    assert new_entry({"body": "x"}, editor="a", entry_id="abc123")["id"] == "abc123"


def test_new_entry_ids_differ() -> None:
    assert len({make()["id"] for _ in range(50)}) == 50


def test_empty_title_is_none() -> None:
    assert make(title="")["title"] is None
    assert make(title="   ")["title"] is None
    assert make(title=None)["title"] is None


def test_empty_author_falls_back_to_editor() -> None:
    assert make(author="")["author"] == "Ana Ruiz"
    assert make(author=None)["author"] == "Ana Ruiz"


def test_blank_author_is_never_stored() -> None:
    # An edit refuses an empty author; a create must not store one either (fall back or refuse).
    try:
        e = make(author="   ")
    except Invalid as exc:
        assert exc.field == "author"
    else:
        assert e["author"].strip() != ""


@pytest.mark.parametrize("name", ["id", "html", "created_at", "Body", "image_url", "seq"])
def test_unknown_entry_field(name: str) -> None:
    assert_invalid(new_entry, {"body": "x", name: "y"}, editor="a", field=name)


def test_body_required() -> None:
    assert_invalid(new_entry, {"title": "t"}, editor="a", field="body")


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_body_not_empty(body: str) -> None:
    assert_invalid(new_entry, {"body": body}, editor="a", field="body")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", 5), ("body", None), ("body", ["x"]), ("title", 5), ("title", {"a": 1}),
        ("author", 5), ("author", ["Ana"]), ("pinned", 1), ("pinned", "true"), ("pinned", None),
        ("key", 0), ("key", "false"), ("image", "https://cdn.example/a.jpg"), ("image", [IMAGE]),
    ],
)  # fmt: skip
def test_entry_field_types(field: str, value: Any) -> None:
    fields = {"body": "x", field: value}
    assert_invalid(new_entry, fields, editor="a", field=field)


@pytest.mark.parametrize("field", ["body", "title", "author"])
def test_nul_refused(field: str) -> None:
    fields = {"body": "x", field: "a\x00b"}
    assert_invalid(new_entry, fields, editor="a", field=field)


@pytest.mark.parametrize(
    ("field", "limit_key"), [("body", "body"), ("title", "title"), ("author", "author")]
)
def test_entry_text_limits(field: str, limit_key: str) -> None:
    limit = LIMITS[limit_key]
    ok: dict[str, Any] = dict(make(**{field: "x" * limit}))
    assert ok[field] == "x" * limit
    # Surrounding blanks are trimmed before the limit is checked.
    padded: dict[str, Any] = dict(make(**{field: "  " + "x" * limit + "  "}))
    assert padded[field] == "x" * limit
    assert_invalid(make, **{field: "x" * (limit + 1)}, field=field)


def test_limits_values() -> None:
    assert LIMITS == {
        "title": 300, "summary": 5000, "author": 120, "body": 100_000, "caption": 1000,
        "credit": 300, "url": 2048,
    }  # fmt: skip


def test_editor_name_over_limit_refused() -> None:
    assert_invalid(new_entry, {"body": "x"}, editor="e" * 121, field="author")


# -- images -------------------------------------------------------------------------------------


def test_image_defaults_caption_and_credit() -> None:
    e = make(image={"url": "http://cdn.example/a.png"})
    assert e["image"] == {"url": "http://cdn.example/a.png", "caption": "", "credit": ""}


def test_image_null_is_none() -> None:
    assert make(image=None)["image"] is None


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/a.jpg", "http://cdn.example/a.jpg", "HTTPS://CDN.EXAMPLE/A.JPG",
        "https://cdn.example:8443/a.jpg?w=300#x", "  https://cdn.example/a.jpg  ",
    ],
)  # fmt: skip
def test_image_url_accepted(url: str) -> None:
    e = make(image={"url": url})
    assert e["image"] is not None
    assert e["image"]["url"] == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
        "javascript://cdn.example/%0aalert(1)", "java\tscript:alert(1)",
        "\x01javascript:alert(1)", "vbscript:msgbox(1)",
        "data:image/png;base64,iVBORw0KGgo=", "data:text/html,<script>alert(1)</script>",
        "ftp://cdn.example/a.jpg", "file:///etc/passwd", "//cdn.example/a.jpg", "/a.jpg",
        "a.jpg", "https://", "https:///a.jpg", "http:cdn.example/a.jpg", "blob:https://x/1",
        "",
    ],
)  # fmt: skip
def test_image_url_refused(url: str) -> None:
    assert_invalid(make, image={"url": url}, field="image.url")


def test_image_url_required() -> None:
    assert_invalid(make, image={"caption": "c"}, field="image.url")


def test_image_url_type() -> None:
    assert_invalid(make, image={"url": 5}, field="image.url")


def test_image_unknown_field() -> None:
    assert_invalid(make, image={**IMAGE, "alt": "x"}, field="image.alt")


def test_image_limits() -> None:
    base = "https://cdn.example/"
    long_url = base + "a" * (LIMITS["url"] - len(base))
    assert make(image={"url": long_url})["image"] is not None
    assert_invalid(make, image={"url": long_url + "a"}, field="image.url")
    assert_invalid(make, image={**IMAGE, "caption": "c" * 1001}, field="image.caption")
    assert_invalid(make, image={**IMAGE, "credit": "c" * 301}, field="image.credit")
    assert_invalid(make, image={**IMAGE, "caption": 3}, field="image.caption")
    ok = make(image={**IMAGE, "caption": "c" * 1000, "credit": "c" * 300})
    assert ok["image"] is not None
    assert len(ok["image"]["caption"]) == 1000


# -- patch_entry --------------------------------------------------------------------------------


def test_patch_changes_only_given_fields() -> None:
    e = make(title="T", image=IMAGE)
    out = patch_entry(e, {"title": "New"})
    assert out["title"] == "New"
    unchanged = ("id", "created_at", "author", "body", "html", "image", "pinned", "key")
    for name in unchanged:
        assert out[name] == e[name]  # type: ignore[literal-required]
    assert out["updated_at"] >= e["updated_at"]
    assert ISO.fullmatch(out["updated_at"])


def test_patch_does_not_mutate_the_original() -> None:
    e = make()
    before = dict(e)
    patch_entry(e, {"body": "changed", "pinned": True})
    assert dict(e) == before


def test_patch_body_rerenders_html() -> None:
    out = patch_entry(make(), {"body": "**bold** <script>x</script>"})
    assert out["body"] == "**bold** <script>x</script>"
    assert out["html"] == "<p><strong>bold</strong> &lt;script&gt;x&lt;/script&gt;</p>"


def test_patch_null_removes_title_and_image() -> None:
    out = patch_entry(make(title="T", image=IMAGE), {"title": None, "image": None})
    assert out["title"] is None
    assert out["image"] is None


def test_patch_pin_and_key() -> None:
    out = patch_entry(make(), {"pinned": True, "key": True})
    assert (out["pinned"], out["key"]) == (True, True)


def test_patch_image_replaced_and_validated() -> None:
    out = patch_entry(make(), {"image": {"url": "https://cdn.example/b.png", "credit": "X"}})
    assert out["image"] == {"url": "https://cdn.example/b.png", "caption": "", "credit": "X"}
    assert_invalid(
        patch_entry, make(), {"image": {"url": "javascript:alert(1)"}}, field="image.url"
    )


def test_patch_empty_refused() -> None:
    assert_invalid(patch_entry, make(), {}, field="body")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": "x"}, "id"), ({"created_at": "x"}, "created_at"), ({"html": "<b>"}, "html"),
        ({"body": ""}, "body"), ({"body": 1}, "body"), ({"author": ""}, "author"),
        ({"author": "   "}, "author"), ({"title": 3}, "title"), ({"pinned": "yes"}, "pinned"),
        ({"key": None}, "key"), ({"body": "x" * 100_001}, "body"),
    ],
)  # fmt: skip
def test_patch_invalid(fields: dict[str, Any], field: str) -> None:
    assert_invalid(patch_entry, make(), fields, field=field)


# -- put_blog -----------------------------------------------------------------------------------


def test_create_blog_defaults() -> None:
    b = put_blog("city-marathon", None, {"title": " City Marathon live "})
    assert b == BlogDoc(
        slug="city-marathon", title="City Marathon live", summary="", status="live",
        created_at=b["created_at"], updated_at=b["created_at"], allowed_origins=[],
    )  # fmt: skip
    assert ISO.fullmatch(b["created_at"])


def test_create_blog_all_fields() -> None:
    b = put_blog(
        "m", None,
        {"title": "T", "summary": "S", "status": "ended",
         "allowed_origins": ["https://News.Example", "http://localhost:8080"]},
    )  # fmt: skip
    assert (b["summary"], b["status"]) == ("S", "ended")
    assert b["allowed_origins"] == ["https://news.example", "http://localhost:8080"]


def test_create_blog_requires_title() -> None:
    assert_invalid(put_blog, "m", None, {"summary": "s"}, field="title")
    assert_invalid(put_blog, "m", None, {}, field="title")


def test_update_blog_keeps_other_fields() -> None:
    b = put_blog("m", None, {"title": "T", "summary": "S", "allowed_origins": ["https://a.b"]})
    out = put_blog("m", b, {"status": "ended"})
    assert out["status"] == "ended"
    for name in ("slug", "title", "summary", "created_at", "allowed_origins"):
        assert out[name] == b[name]  # type: ignore[literal-required]
    assert out["updated_at"] >= b["updated_at"]
    assert b["status"] == "live"  # the current value is not mutated


def test_update_blog_without_title() -> None:
    b = put_blog("m", None, {"title": "T"})
    assert put_blog("m", b, {"summary": "new"})["title"] == "T"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "T", "slug": "x"}, "slug"), ({"title": "T", "created_at": "x"}, "created_at"),
        ({"title": ""}, "title"), ({"title": "   "}, "title"), ({"title": 1}, "title"),
        ({"title": "t" * 301}, "title"), ({"title": "T", "summary": "s" * 5001}, "summary"),
        ({"title": "T", "summary": 1}, "summary"), ({"title": "T", "status": "draft"}, "status"),
        ({"title": "T", "status": "LIVE"}, "status"), ({"title": "T", "status": None}, "status"),
        ({"title": "T", "status": ["live"]}, "status"),
        ({"title": "T", "allowed_origins": "https://a.b"}, "allowed_origins"),
        ({"title": "T", "allowed_origins": None}, "allowed_origins"),
        ({"title": "T", "allowed_origins": [f"https://a{i}.b" for i in range(51)]},
         "allowed_origins"),
    ],
)  # fmt: skip
def test_put_blog_invalid(fields: dict[str, Any], field: str) -> None:
    assert_invalid(put_blog, "m", None, fields, field=field)


def test_put_blog_limits_inclusive() -> None:
    b = put_blog("m", None, {"title": "t" * 300, "summary": "s" * 5000})
    assert (len(b["title"]), len(b["summary"])) == (300, 5000)
    fifty = [f"https://a{i}.example" for i in range(50)]
    assert put_blog("m", None, {"title": "T", "allowed_origins": fifty})["allowed_origins"] == fifty


@pytest.mark.parametrize(
    "origin",
    [
        "news.example", "https://news.example/", "https://news.example/path", "ftp://news.example",
        "https://user@news.example", "*", "", "https://", "https://news.example:123456",
        "javascript:alert(1)", "https://news example", "https://news.example?x=1", 5, None,
    ],
)  # fmt: skip
def test_allowed_origins_format(origin: Any) -> None:
    fields = {"title": "T", "allowed_origins": ["https://ok.example", origin]}
    assert_invalid(put_blog, "m", None, fields, field="allowed_origins.1")


@pytest.mark.parametrize(
    "origin", ["https://news.example", "http://localhost", "http://127.0.0.1:8000", "https://a-b.c"]
)
def test_allowed_origins_accepted(origin: str) -> None:
    b = put_blog("m", None, {"title": "T", "allowed_origins": [origin]})
    assert b["allowed_origins"] == [origin]


# -- origin_allowed, slugs, ids -----------------------------------------------------------------


def blog_with(origins: list[str]) -> BlogDoc:
    return put_blog("m", None, {"title": "T", "allowed_origins": origins})


def test_origin_allowed() -> None:
    open_blog = blog_with([])
    assert origin_allowed(open_blog, "https://anyone.example")
    assert origin_allowed(open_blog, None)
    closed = blog_with(["https://news.example"])
    assert origin_allowed(closed, "https://news.example")
    assert origin_allowed(closed, "HTTPS://NEWS.EXAMPLE")
    assert origin_allowed(closed, None)  # not a browser page
    assert not origin_allowed(closed, "https://evil.example")
    assert not origin_allowed(closed, "http://news.example")
    assert not origin_allowed(closed, "https://news.example.evil.example")
    assert not origin_allowed(closed, "null")
    assert not origin_allowed(closed, "")


@pytest.mark.parametrize("slug", ["a", "city-marathon", "2026", "-", "a" * 64])
def test_valid_slug(slug: str) -> None:
    assert valid_slug(slug)


@pytest.mark.parametrize("slug", ["", "A", "a_b", "a b", "a" * 65, "é", "a/b", "a\n"])
def test_invalid_slug(slug: str) -> None:
    assert not valid_slug(slug)


@pytest.mark.parametrize(
    ("entry_id", "ok"),
    [("0mhx3k2a9c4f7q", True), ("a" * 32, True), ("", False), ("a" * 33, False),
     ("ABC", False), ("a-b", False), ("a\n", False)],
)  # fmt: skip
def test_valid_entry_id(entry_id: str, ok: bool) -> None:
    assert valid_entry_id(entry_id) is ok


def test_invalid_error_message_names_field() -> None:
    with invalid("image.url"):
        make(image={"url": "javascript:alert(1)"})
