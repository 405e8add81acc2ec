"""Driving a kit-based UI in process, as a browser would: cookies, CSRF token, Origin."""

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
ORIGIN = "http://test"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class UiClient:
    """An httpx client that keeps cookies and sends forms like a page of the site."""

    def __init__(self, client: httpx.AsyncClient, prefix: str = "/ui") -> None:
        self.http = client
        self.prefix = prefix
        self.last_html = ""

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(url, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            self.last_html = response.text
        return response

    async def post_form(
        self, url: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        """A same-origin form POST carrying the CSRF token of the last page seen."""
        form = {"csrf_token": csrf if csrf is not None else csrf_of(self.last_html), **(data or {})}
        response = await self.http.post(url, data=form, headers={"Origin": ORIGIN})
        if "text/html" in response.headers.get("content-type", ""):
            self.last_html = response.text
        return response

    async def sign_in(self, username: str) -> httpx.Response:
        await self.get(f"{self.prefix}/sign-in")
        response = await self.post_form(f"{self.prefix}/sign-in/demo", {"username": username})
        assert response.status_code == 303, response.text
        return response

    async def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code in (302, 303, 307), response.status_code
        return await self.get(response.headers["location"])
