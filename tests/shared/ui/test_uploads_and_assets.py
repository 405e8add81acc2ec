"""The kit's opt-in for file uploads (still CSRF- and Origin-checked, bounded) and a UI's
own static files."""

from fastapi import FastAPI

from shared.ui.security import CSRF_HEADER
from tests.shared.ui.client import ORIGIN, UiClient, csrf_of
from tests.shared.ui.conftest import ASSET_JS, UPLOAD_LIMIT


async def _token(ui: UiClient) -> str:
    await ui.sign_in("cs1")
    return csrf_of((await ui.get("/ui/")).text)


def _files(size: int = 100) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("a.png", b"x" * size, "image/png")}


async def test_an_upload_route_takes_a_bounded_multipart_body_with_the_token(
    ui: UiClient, demo_app: FastAPI
) -> None:
    token = await _token(ui)
    in_form = await ui.http.post(
        "/ui/upload",
        data={"csrf_token": token, "kind": "image"},
        files=_files(),
        headers={"Origin": ORIGIN},
    )
    assert in_form.status_code == 200 and in_form.json() == {"size": 100, "kind": "image"}
    in_header = await ui.http.post(
        "/ui/upload", files=_files(50), headers={"Origin": ORIGIN, CSRF_HEADER: token}
    )
    assert in_header.status_code == 200 and in_header.json()["size"] == 50
    assert [len(u) for u in demo_app.state.uploads] == [100, 50]


async def test_an_upload_is_refused_without_token_from_elsewhere_or_too_big(
    ui: UiClient, demo_app: FastAPI
) -> None:
    token = await _token(ui)
    refused = [
        # no token at all, a wrong header token (refused before the body is read)
        await ui.http.post("/ui/upload", files=_files(), headers={"Origin": ORIGIN}),
        await ui.http.post(
            "/ui/upload",
            data={"csrf_token": token},
            files=_files(),
            headers={"Origin": ORIGIN, CSRF_HEADER: "0" * 64},
        ),
        # another site's page
        await ui.http.post(
            "/ui/upload",
            data={"csrf_token": token},
            files=_files(),
            headers={"Origin": "https://evil.example"},
        ),
        # over the route's limit
        await ui.http.post(
            "/ui/upload",
            data={"csrf_token": token},
            files=_files(UPLOAD_LIMIT + 1),
            headers={"Origin": ORIGIN},
        ),
    ]
    for response in refused:
        assert response.status_code == 403 and "Biểu mẫu đã hết hạn" in response.text
    # The opt-in is the route's: other POSTs still refuse multipart bodies.
    counter = await ui.http.post(
        "/ui/counter",
        data={"csrf_token": token, "confirmed": "1"},
        files=_files(),
        headers={"Origin": ORIGIN},
    )
    assert counter.status_code == 403 and demo_app.state.counter == 0
    assert demo_app.state.uploads == []


async def test_a_body_longer_than_declared_is_not_taken(ui: UiClient) -> None:
    token = await _token(ui)
    request = ui.http.build_request(
        "POST",
        "/ui/upload",
        data={"csrf_token": token},
        files=_files(UPLOAD_LIMIT * 2),
        headers={"Origin": ORIGIN},
    )
    request.headers["content-length"] = "1000"  # a lie, under the limit: the kit counts
    response = await ui.http.send(request)
    assert response.status_code == 403


async def test_a_uis_own_files_are_served_hashed_and_nothing_else(
    ui: UiClient, demo_app: FastAPI
) -> None:
    url = demo_app.state.assets.url("page.js")
    assert url.startswith("/ui/assets/demo/page.js?v=")
    response = await ui.get(url)
    assert response.status_code == 200 and response.text == ASSET_JS
    assert response.headers["content-type"].startswith("text/javascript")
    assert "immutable" in response.headers["cache-control"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    stale = await ui.get("/ui/assets/demo/page.js?v=old")
    assert stale.headers["cache-control"] == "no-cache"
    for missing in ("/ui/assets/demo/notes.txt", "/ui/assets/demo/..%2Fconftest.py"):
        assert (await ui.get(missing)).status_code == 404
