"""Editor tokens: issue, verify, scopes, and the development secret file."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from pushhub.auth import (
    ALGORITHM,
    MIN_SECRET_BYTES,
    Editor,
    TokenVerifier,
    issue_token,
    load_or_create_secret,
    require_blog,
    verify,
)
from pushhub.errors import Forbidden, Unauthorized

SECRET = "unit-test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"
OTHER = "another-secret-0123456789abcdef-0123456789xx"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def raw_token(claims: dict[str, Any], secret: str = SECRET, alg: str = ALGORITHM) -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def test_round_trip() -> None:
    token = issue_token(SECRET, subject="Ana Ruiz", blogs=["marathon", "election"])
    editor = verify(bearer(token), SECRET)
    assert editor.name == "Ana Ruiz"
    assert editor.blogs == frozenset({"marathon", "election"})
    assert editor.token_id


def test_claims_issued() -> None:
    before = int(time.time())
    token = issue_token(SECRET, subject="a", ttl_seconds=60)
    claims = jwt.decode(token, SECRET, algorithms=[ALGORITHM])
    assert set(claims) == {"sub", "blogs", "iat", "exp", "jti"}
    assert claims["blogs"] == ["*"]
    assert before <= claims["iat"] <= claims["exp"] - 60 + 1
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"


def test_token_ids_are_unique() -> None:
    ids = {verify(bearer(issue_token(SECRET)), SECRET).token_id for _ in range(20)}
    assert len(ids) == 20


def test_scheme_is_case_insensitive_and_spaces_tolerated() -> None:
    token = issue_token(SECRET)
    assert verify(f"bearer {token}", SECRET).name == "editor"
    assert verify(f"BEARER  {token} ", SECRET).name == "editor"


def test_expired() -> None:
    token = raw_token({"sub": "a", "blogs": ["*"], "exp": int(time.time()) - 10})
    with pytest.raises(Unauthorized, match="expired"):
        verify(bearer(token), SECRET)


def test_negative_ttl_is_expired() -> None:
    with pytest.raises(Unauthorized):
        verify(bearer(issue_token(SECRET, ttl_seconds=-5)), SECRET)


def test_wrong_secret() -> None:
    with pytest.raises(Unauthorized) as info:
        verify(bearer(issue_token(OTHER)), SECRET)
    assert info.value.status == 401
    assert info.value.code == "unauthorized"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        verify(header, SECRET)


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Token {t}", "{t}", "Bearer", "Bearer ", "Bearer    ", "Bearer{t}"],
)
def test_wrong_scheme_or_shape(header: str) -> None:
    with pytest.raises(Unauthorized):
        verify(header.format(t=issue_token(SECRET)), SECRET)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.e30.", "...."])
def test_garbage_token(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify(bearer(token), SECRET)


def test_unsigned_token_refused() -> None:
    token = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        verify(bearer(token), SECRET)


def test_other_algorithm_refused() -> None:
    token = raw_token({"sub": "a", "exp": int(time.time()) + 60}, alg="HS512")
    with pytest.raises(Unauthorized):
        verify(bearer(token), SECRET)


def test_tampered_payload_refused() -> None:
    token = issue_token(SECRET, blogs=["marathon"])
    head, _, sig = token.split(".")
    forged = base64.urlsafe_b64encode(
        json.dumps({"sub": "x", "blogs": ["*"], "exp": int(time.time()) + 60}).encode()
    ).rstrip(b"=")
    with pytest.raises(Unauthorized):
        verify(bearer(f"{head}.{forged.decode()}.{sig}"), SECRET)


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_required_claims(missing: str) -> None:
    claims = {"sub": "a", "blogs": ["*"], "exp": int(time.time()) + 60}
    del claims[missing]
    with pytest.raises(Unauthorized):
        verify(bearer(raw_token(claims)), SECRET)


@pytest.mark.parametrize("blogs", ["*", "marathon", [1], [["a"]], {"a": 1}])
def test_blogs_claim_must_be_a_list_of_slugs(blogs: Any) -> None:
    token = raw_token({"sub": "a", "blogs": blogs, "exp": int(time.time()) + 60})
    with pytest.raises(Unauthorized):
        verify(bearer(token), SECRET)


def test_missing_blogs_claim_writes_nothing() -> None:
    token = raw_token({"sub": "a", "exp": int(time.time()) + 60})
    editor = verify(bearer(token), SECRET)
    assert editor.blogs == frozenset()
    with pytest.raises(Forbidden):
        require_blog(editor, "marathon")


# -- scopes -------------------------------------------------------------------------------------


def test_require_blog_scope() -> None:
    editor = verify(bearer(issue_token(SECRET, blogs=["marathon"])), SECRET)
    require_blog(editor, "marathon")
    with pytest.raises(Forbidden) as info:
        require_blog(editor, "election")
    assert info.value.status == 403
    assert "election" in info.value.message


def test_wildcard_scope() -> None:
    editor = verify(bearer(issue_token(SECRET, blogs=["*"])), SECRET)
    for blog in ("marathon", "election", "x"):
        require_blog(editor, blog)


def test_may_write() -> None:
    assert Editor("a", frozenset({"m"}), None).may_write("m")
    assert not Editor("a", frozenset({"m"}), None).may_write("mm")
    assert not Editor("a", frozenset(), None).may_write("m")
    assert Editor("a", frozenset({"*"}), None).may_write("anything")


# -- issuer and audience ------------------------------------------------------------------------


def test_issuer_and_audience_round_trip() -> None:
    token = issue_token(SECRET, issuer="newsroom", audience="pushhub")
    editor = verify(bearer(token), SECRET, issuer="newsroom", audience="pushhub")
    assert editor.name == "editor"


@pytest.mark.parametrize(
    ("token_iss", "token_aud"),
    [(None, "pushhub"), ("other", "pushhub"), ("newsroom", None), ("newsroom", "other")],
)
def test_issuer_and_audience_enforced(token_iss: str | None, token_aud: str | None) -> None:
    token = issue_token(SECRET, issuer=token_iss, audience=token_aud)
    with pytest.raises(Unauthorized):
        verify(bearer(token), SECRET, issuer="newsroom", audience="pushhub")


def test_not_enforced_when_not_configured() -> None:
    token = issue_token(SECRET, issuer="newsroom")
    assert verify(bearer(token), SECRET).name == "editor"


# -- the development secret ---------------------------------------------------------------------


def test_secret_created_once_with_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    secret, created = load_or_create_secret(data_dir)
    assert created is True
    path = data_dir / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret.encode()) >= 32
    assert path.read_text() == secret + "\n"

    again, created_again = load_or_create_secret(data_dir)
    assert (again, created_again) == (secret, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_secret_is_read_back_stripped(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("  my-own-secret-0123456789abcdef-0123456789\n\n")
    assert load_or_create_secret(tmp_path) == ("my-own-secret-0123456789abcdef-0123456789", False)


@pytest.mark.parametrize("content", ["", "\n", "   \n"])
def test_empty_secret_file_is_never_the_signing_key(tmp_path: Path, content: str) -> None:
    # A file left empty (crash between create and write, full disk) must not make "" the HMAC
    # key: anyone could then sign editor tokens. Refusing or making a new secret are both fine.
    (tmp_path / "secret").write_text(content)
    try:
        secret, _ = load_or_create_secret(tmp_path)
    except (ValueError, RuntimeError):
        return
    assert len(secret.encode()) >= MIN_SECRET_BYTES


def test_secrets_differ_between_data_dirs(tmp_path: Path) -> None:
    a, _ = load_or_create_secret(tmp_path / "a")
    b, _ = load_or_create_secret(tmp_path / "b")
    assert a != b


def test_created_secret_signs_tokens(tmp_path: Path) -> None:
    secret, _ = load_or_create_secret(tmp_path)
    assert verify(bearer(issue_token(secret, subject="s")), secret).name == "s"


# -- TokenVerifier: verify, remembering accepted tokens --------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_verifier_checks_a_signature_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    check = TokenVerifier(SECRET)
    token = issue_token(SECRET, subject="Ana Ruiz", blogs=["marathon"])
    first, second = check(bearer(token)), check(bearer(token))
    assert first == second == Editor("Ana Ruiz", frozenset({"marathon"}), first.token_id)
    assert decoded == [token]
    check(bearer(issue_token(SECRET)))
    assert len(decoded) == 2


def test_verifier_refuses_a_remembered_token_once_it_expires() -> None:
    check = TokenVerifier(SECRET)
    expires = int(time.time()) + 1
    token = raw_token({"sub": "a", "exp": expires})
    assert check(bearer(token)).name == "a"
    assert check(bearer(token)).name == "a"  # remembered
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        check(bearer(token))


def test_verifier_decodes_again_once_its_clock_passes_exp(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda t, *a, **k: decoded.append(t) or real(t, *a, **k))
    clock = Clock()
    check = TokenVerifier(SECRET, clock=clock)
    token = issue_token(SECRET, ttl_seconds=60)
    check(bearer(token))
    clock.now += 59
    check(bearer(token))
    assert len(decoded) == 1
    clock.now += 2  # past exp by the verifier's clock (PyJWT's real one still accepts it)
    check(bearer(token))
    assert len(decoded) == 2


def test_verifier_never_remembers_a_refusal() -> None:
    check = TokenVerifier(SECRET)
    forged = issue_token(OTHER)
    for _ in range(2):
        with pytest.raises(Unauthorized, match="not valid"):
            check(bearer(forged))
    with pytest.raises(Unauthorized, match="required"):
        check(None)


def test_verifier_keeps_its_claims_checks() -> None:
    check = TokenVerifier(SECRET, issuer="newsroom", audience="pushhub")
    good = issue_token(SECRET, issuer="newsroom", audience="pushhub")
    assert check(bearer(good)).name == "editor"
    with pytest.raises(Unauthorized):
        check(bearer(issue_token(SECRET, issuer="elsewhere", audience="pushhub")))


def test_verifier_holds_at_most_size_tokens() -> None:
    check = TokenVerifier(SECRET, size=3)
    tokens = [issue_token(SECRET, subject=f"e{i}") for i in range(5)]
    for token in tokens:
        check(bearer(token))
    assert len(check._accepted) == 3
    assert list(check._accepted) == [bearer(t) for t in tokens[2:]]  # the oldest went first
