"""The UI kit on a tiny app: sign-in and out, session cookie, CSRF, headers, language."""

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from shared.auth.dev_issuer import issue_token
from shared.ui.flash import Flash, decode_flashes, encode_flashes
from shared.ui.security import CSP
from tests.shared.ui.client import ORIGIN, UiClient, csrf_of
from tests.shared.ui.conftest import DemoUiSettings, build_demo_app

SESSION = "ims_demo_session"


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


async def test_sign_in_page_lists_the_demo_users(ui: UiClient) -> None:
    page = await ui.get("/ui/sign-in")
    assert page.status_code == 200
    assert "Hoàng Thu Hà" in page.text and 'value="cs1"' in page.text
    assert "Đăng nhập thử" in page.text  # Vietnamese by default
    assert set_cookie_headers(page, "ims_demo_pre"), "a pre-session binds the sign-in form's token"


async def test_signing_in_sets_a_strict_session_cookie_and_lands_on_next(ui: UiClient) -> None:
    first = await ui.get("/ui/?name=x")
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/sign-in?next=%2Fui%2F%3Fname%3Dx"
    await ui.get(first.headers["location"])
    assert 'name="next" value="/ui/?name=x"' in ui.last_html
    response = await ui.post_form("/ui/sign-in/demo", {"username": "cs1", "next": "/ui/?name=x"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/?name=x"
    (cookie,) = set_cookie_headers(response, SESSION)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/ui"} <= flags
    assert "secure" not in flags  # dev: plain http on localhost
    home = await ui.follow(response)
    assert home.status_code == 200 and "Hoàng Thu Hà" in home.text


def test_session_cookie_is_secure_outside_dev(tmp_path: Path, dev_keys: tuple[Path, Path]) -> None:
    for env in ("prod", "test"):  # a shared test environment is deployed too
        app = build_demo_app(tmp_path, dev_keys[1], env=env, ui_secret=SecretStr("real-secret"))
        kit = app.state.ui_kit
        assert kit.providers == [], f"no demo sign-in in {env} unless its key is named"
        response = Response()
        kit.start_session(response, "token", max_age=60)
        cookie = response.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_expired_or_forged_session_redirects_to_sign_in_with_a_message(
    ui: UiClient, dev_keys: tuple[Path, Path]
) -> None:
    expired = issue_token(
        dev_keys[0].read_bytes(), username="cs1", ttl_seconds=60, now=time.time() - 3600
    )
    ui.http.cookies.set(SESSION, expired, path="/ui")
    response = await ui.get("/ui/")
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/sign-in")
    assert any(
        "Max-Age=0" in h or "expires=" in h.lower() for h in set_cookie_headers(response, SESSION)
    )
    page = await ui.follow(response)
    assert "Phiên đăng nhập đã hết hạn" in page.text

    ui.http.cookies.clear()
    ui.http.cookies.set(SESSION, expired[:-4] + "AAAA", path="/ui")
    page = await ui.follow(await ui.get("/ui/"))
    assert "Phiên đăng nhập không hợp lệ" in page.text


async def test_a_user_without_the_role_gets_a_403_page(ui: UiClient) -> None:
    await ui.sign_in("sales1")
    page = await ui.get("/ui/")
    assert page.status_code == 403
    assert "text/html" in page.headers["content-type"]
    assert "không có quyền dùng trang này" in page.text
    assert "Đăng xuất" in page.text  # so they can switch account


async def test_admin_passes_like_elsewhere(ui: UiClient) -> None:
    await ui.sign_in("admin1")
    assert (await ui.get("/ui/")).status_code == 200


async def test_csrf_refusals_change_nothing(ui: UiClient, demo_app: FastAPI) -> None:
    await ui.sign_in("cs1")
    page = await ui.get("/ui/")
    token = csrf_of(page.text)
    data = {"csrf_token": token, "confirmed": "1"}
    refusals = [
        await ui.http.post("/ui/counter", data={"confirmed": "1"}, headers={"Origin": ORIGIN}),
        await ui.http.post(
            "/ui/counter", data={**data, "csrf_token": "0" * 64}, headers={"Origin": ORIGIN}
        ),
        await ui.http.post("/ui/counter", data=data, headers={"Origin": "https://evil.example"}),
        await ui.http.post("/ui/counter", data=data, headers={"Referer": "https://evil.example/x"}),
        await ui.http.post("/ui/counter", data=data),  # neither Origin nor Referer
        await ui.http.post("/ui/counter", data=data, headers={"Origin": "null"}),
    ]
    for response in refusals:
        assert response.status_code == 403, response.text
        assert "Biểu mẫu đã hết hạn" in response.text
    assert demo_app.state.counter == 0
    ok = await ui.http.post("/ui/counter", data=data, headers={"Origin": ORIGIN})
    assert ok.status_code == 303 and demo_app.state.counter == 1
    by_header = await ui.http.post(
        "/ui/counter",
        data={"confirmed": "1"},
        headers={"Referer": f"{ORIGIN}/ui/", "X-CSRF-Token": token},
    )
    assert by_header.status_code == 303 and demo_app.state.counter == 2


async def test_a_token_is_bound_to_its_session(ui: UiClient, demo_app: FastAPI) -> None:
    await ui.sign_in("cs1")
    cs1_token = csrf_of((await ui.get("/ui/")).text)
    ui.http.cookies.clear()
    await ui.sign_in("cs2")
    response = await ui.post_form("/ui/counter", {"confirmed": "1"}, csrf=cs1_token)
    assert response.status_code == 403 and demo_app.state.counter == 0


async def test_the_sign_in_form_is_csrf_protected_too(ui: UiClient) -> None:
    await ui.get("/ui/sign-in")
    forged = await ui.post_form("/ui/sign-in/demo", {"username": "cs1"}, csrf="f" * 64)
    assert forged.status_code == 403 and not set_cookie_headers(forged, SESSION)


async def test_unconfirmed_post_answers_a_confirm_page(ui: UiClient, demo_app: FastAPI) -> None:
    await ui.sign_in("cs1")
    await ui.get("/ui/")
    page = await ui.post_form("/ui/counter", {"note": "x"})
    assert page.status_code == 200 and demo_app.state.counter == 0
    assert 'name="confirmed" value="1"' in page.text and 'name="note" value="x"' in page.text
    done = await ui.post_form("/ui/counter", {"note": "x", "confirmed": "1"})
    assert done.status_code == 303 and demo_app.state.counter == 1
    home = await ui.follow(done)
    assert "Xin chào counter" in home.text  # the flash, shown once
    assert "Xin chào counter" not in (await ui.get("/ui/")).text


async def test_sign_out_needs_csrf_and_clears_the_cookie(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    await ui.get("/ui/")
    refused = await ui.http.post("/ui/sign-out", headers={"Origin": ORIGIN})
    assert refused.status_code == 403
    assert (await ui.get("/ui/")).status_code == 200
    out = await ui.post_form("/ui/sign-out")
    assert out.status_code == 303
    (cookie,) = set_cookie_headers(out, SESSION)
    assert "Max-Age=0" in cookie or "expires=" in cookie.lower()
    assert "Bạn đã đăng xuất" in (await ui.follow(out)).text
    assert (await ui.get("/ui/")).status_code == 303


async def test_security_headers_and_no_inline_script_or_style(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    for url in ("/ui/", "/ui/sign-in", "/ui/nowhere"):
        response = await ui.get(url)
        assert response.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), "inline script"
        assert not re.search(r"\sstyle=", response.text), "inline style attribute"
        assert not re.search(r"\son[a-z]+=", response.text), "inline event handler"
    versioned = re.search(r'src="(/ui/static/ui\.js\?v=[0-9a-f]{10})"', response.text)
    assert versioned, "static files are linked by content hash"
    static = await ui.get(versioned.group(1))
    assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in static.headers["cache-control"]


async def test_the_api_beside_the_ui_keeps_json_and_no_ui_headers(ui: UiClient) -> None:
    response = await ui.http.get("/api/thing")
    assert response.json() == {"ok": "yes"} and "content-security-policy" not in response.headers
    missing = await ui.http.get("/api/missing")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_error_pages_are_html_in_the_users_language(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    page = await ui.get("/ui/nowhere")
    assert page.status_code == 404 and "Không tìm thấy" in page.text
    await ui.get("/ui/lang/en?next=/ui/nowhere")
    page = await ui.get("/ui/nowhere")
    assert page.status_code == 404 and "Not found" in page.text and '<html lang="en">' in page.text
    wrong_method = await ui.http.delete("/ui/counter")
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]


async def test_language_switch_is_a_link_on_every_page_and_stays_on_site(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    page = await ui.get("/ui/?name=An")
    assert 'href="/ui/lang/en?next=%2Fui%2F%3Fname%3DAn"' in page.text
    switched = await ui.get("/ui/lang/en?next=/ui/?name=An")
    assert switched.status_code == 303 and switched.headers["location"] == "/ui/?name=An"
    assert "lang=en" in switched.headers["set-cookie"]
    english = await ui.follow(switched)
    assert "Hello An" in english.text and "Sign out" in english.text
    for evil in ("https://evil.example/", "//evil.example/ui/", "/ui\\..\\x", "/api/thing"):
        bounced = await ui.get("/ui/lang/vi", params={"next": evil})
        assert bounced.headers["location"] == "/ui/", evil
    assert "Xin chào" in (await ui.get("/ui/")).text


async def test_user_data_is_escaped(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    page = await ui.get("/ui/", params={"name": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_dates_are_viet_nam_time_dd_mm_yyyy(ui: UiClient) -> None:
    await ui.sign_in("cs1")
    page = await ui.get("/ui/")
    assert '<p id="when">01/07/2025 08:05</p>' in page.text  # 01:05 UTC


def test_flash_cookies_are_signed() -> None:
    value = encode_flashes("k", [Flash("info", "a.b", {"n": 1})])
    assert decode_flashes("k", value) == [Flash("info", "a.b", {"n": 1})]
    assert decode_flashes("other", value) == []
    assert decode_flashes("k", value[:-1] + ("0" if value[-1] != "0" else "1")) == []
    assert decode_flashes("k", "garbage") == []


def test_demo_sign_in_is_refused_in_prod(tmp_path: Path) -> None:
    key = tmp_path / "private.pem"
    key.write_text("x")
    with pytest.raises(ValidationError, match="demo sign-in"):
        DemoUiSettings(
            env="prod",
            ui_secret=SecretStr("s"),
            jwt_jwks_url="https://idp/jwks",
            ui_dev_signin_key_file=str(key),
        )
    settings = DemoUiSettings(
        env="prod", ui_secret=SecretStr("s"), jwt_public_key_file=str(tmp_path / "public.pem")
    )
    assert settings.demo_signin_key_path() is None  # not even the dev key beside the public one


def test_the_dev_ui_secret_is_refused_outside_dev() -> None:
    from approval.settings import ApprovalSettings

    with pytest.raises(ValidationError, match="ui_secret still has its development default"):
        ApprovalSettings(env="test", jwt_public_key="k")
    ApprovalSettings(env="test", jwt_public_key="k", ui_secret=SecretStr("s"))


def test_the_demo_key_defaults_to_the_dev_issuers_pair_in_dev(dev_keys: tuple[Path, Path]) -> None:
    settings = DemoUiSettings(jwt_public_key_file=str(dev_keys[1]))
    assert settings.demo_signin_key_path() == dev_keys[0]
    assert DemoUiSettings().demo_signin_key_path() is None


async def test_posts_are_small_urlencoded_forms_and_foreign_ones_are_not_read(
    ui: UiClient, demo_app: FastAPI
) -> None:
    await ui.sign_in("cs1")
    token = csrf_of((await ui.get("/ui/")).text)
    multipart = await ui.http.post(
        "/ui/counter",
        data={"csrf_token": token, "confirmed": "1"},
        files={"f": ("a.bin", b"x" * 1000)},
        headers={"Origin": ORIGIN},
    )
    huge = await ui.http.post(
        "/ui/counter",
        data={"csrf_token": token, "confirmed": "1", "pad": "x" * 70_000},
        headers={"Origin": ORIGIN},
    )
    for response in (multipart, huge):
        assert response.status_code == 403 and "Biểu mẫu đã hết hạn" in response.text
    assert demo_app.state.counter == 0
    ok = await ui.post_form("/ui/counter", {"confirmed": "1"}, csrf=token)
    assert ok.status_code == 303 and demo_app.state.counter == 1


async def test_after_sign_in_a_live_search_returns_to_the_page_not_the_fragment(
    ui: UiClient,
) -> None:
    first = await ui.get("/ui/", params={"name": "x", "partial": "1"})
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/sign-in?next=%2Fui%2F%3Fname%3Dx"


async def test_next_never_leaves_the_ui_even_through_dot_segments(ui: UiClient) -> None:
    kit = ui_kit_of(ui)
    assert kit.safe_next("/ui/../api/v1/reviews") == "/ui/"
    assert kit.safe_next("/ui/..//evil.example") == "/ui/"
    assert kit.safe_next("/ui/reviews/./x/../y?q=1") == "/ui/reviews/y?q=1"
    assert kit.safe_next("/ui/reviews/") == "/ui/reviews/"


def ui_kit_of(ui: UiClient) -> Any:
    transport = ui.http._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.ui_kit  # type: ignore[attr-defined]


def test_a_test_environment_names_its_demo_key(dev_keys: tuple[Path, Path]) -> None:
    beside = DemoUiSettings(
        env="test", ui_secret=SecretStr("s"), jwt_public_key_file=str(dev_keys[1])
    )
    assert beside.demo_signin_key_path() is None
    named = DemoUiSettings(
        env="test",
        ui_secret=SecretStr("s"),
        jwt_public_key_file=str(dev_keys[1]),
        ui_dev_signin_key_file=str(dev_keys[0]),
    )
    assert named.demo_signin_key_path() == dev_keys[0]
