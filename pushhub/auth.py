"""Editor tokens: HS256 JWTs naming the editor (`sub`) and the blogs they may write."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from pushhub.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Editor:
    name: str
    blogs: frozenset[str]
    token_id: str | None

    def may_write(self, blog: str) -> bool:
        return "*" in self.blogs or blog in self.blogs


def issue_token(
    secret: str,
    *,
    subject: str = "editor",
    blogs: Sequence[str] = ("*",),
    ttl_seconds: int = 12 * 3600,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject, "blogs": list(blogs), "iat": now, "exp": now + ttl_seconds,
        "jti": secrets.token_urlsafe(12),
    }  # fmt: skip
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(
    header: str | None, secret: str, *, issuer: str | None = None, audience: str | None = None
) -> Editor:
    return _decode(header, secret, issuer, audience)[0]


def _decode(
    header: str | None, secret: str, issuer: str | None, audience: str | None
) -> tuple[Editor, float]:
    """The editor a bearer token names, and when the token expires."""
    if not header:
        raise Unauthorized("an editor token is required: Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(), secret, algorithms=[ALGORITHM], issuer=issuer, audience=audience,
            options={"require": ["exp", "sub"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"the token is not valid: {exc}") from None
    blogs = claims.get("blogs", [])
    if not isinstance(blogs, list) or not all(isinstance(b, str) for b in blogs):
        raise Unauthorized("the token's 'blogs' claim must be a list of blog slugs")
    return Editor(str(claims["sub"]), frozenset(blogs), claims.get("jti")), float(claims["exp"])


class TokenVerifier:
    """`verify` with one process's key and claims, remembering the tokens it has accepted.

    A newsroom's few editors send the same token with every write, and checking its signature
    was about a tenth of a publish's CPU. A remembered token is refused like any other once its
    `exp` has passed (the same test PyJWT applies: valid while now < exp); only accepted tokens
    are kept, at most `size` of them. Revocation is not decided here: callers check it on every
    request.
    """

    def __init__(
        self, secret: str, *, issuer: str | None = None, audience: str | None = None,
        size: int = 1024, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.size = size
        self.clock = clock
        self._accepted: dict[str, tuple[Editor, float]] = {}

    def __call__(self, header: str | None) -> Editor:
        if header is not None:
            known = self._accepted.get(header)
            if known is not None:
                if self.clock() < known[1]:
                    return known[0]
                del self._accepted[header]
        editor, expires = _decode(header, self.secret, self.issuer, self.audience)
        assert header is not None  # _decode refuses a missing header
        if len(self._accepted) >= self.size:
            del self._accepted[next(iter(self._accepted))]  # the one accepted longest ago
        self._accepted[header] = (editor, expires)
        return editor


def require_blog(editor: Editor, blog: str) -> None:
    if not editor.may_write(blog):
        raise Forbidden(f"this token may not write to blog {blog!r}")


def load_or_create_secret(data_dir: Path) -> tuple[str, bool]:
    """The development secret kept in the data directory; True when it was just made."""
    path = data_dir / "secret"
    if path.exists():
        secret = path.read_text().strip()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            # An empty or cut-short file (crash, full disk) must never become the HMAC key.
            raise ValueError(
                f"{path} holds no usable secret (under {MIN_SECRET_BYTES} bytes): "
                "delete it to have a new one made, or set PUSHHUB_SECRET"
            )
        return secret, False
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Created with 0600 from the start so the secret is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, True
