"""A thin editor for tests: real HTTP calls to a real server."""

from __future__ import annotations

from typing import Any

import httpx


class Editor:
    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )

    async def blog(self, slug: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", f"Blog {slug}")
        r = await self.http.put(f"/api/blogs/{slug}", json=fields)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    async def publish(self, slug: str, body: str = "body", **fields: Any) -> dict[str, Any]:
        r = await self.http.post(f"/api/blogs/{slug}/entries", json={"body": body, **fields})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def edit(self, slug: str, entry_id: str, **fields: Any) -> dict[str, Any]:
        r = await self.http.patch(f"/api/blogs/{slug}/entries/{entry_id}", json=fields)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def delete(self, slug: str, entry_id: str) -> dict[str, Any]:
        r = await self.http.delete(f"/api/blogs/{slug}/entries/{entry_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def state(self, slug: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/blogs/{slug}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def aclose(self) -> None:
        await self.http.aclose()
