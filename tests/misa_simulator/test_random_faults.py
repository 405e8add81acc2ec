"""Random faults (`POST /_sim/faults/random`): a share of API calls fail, at random moments.

What `ims chaos` uses for its MISA faults; the counted faults (`POST /_sim/faults`) are
unchanged and go first.
"""

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from misa_simulator.runtime import FaultMode, RandomFaults
from tests.fixtures.misa_simulator import MisaSimulator
from tests.misa_simulator.test_api import connect_body, get, token_for

MODES = ["http_500", "timeout", "rate_limit", "expired_token"]


@pytest.fixture
async def http(misa_sim: MisaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=misa_sim.base_url, timeout=10) as client:
        yield client


async def arm_random(http: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await http.post("/_sim/faults/random", json=body)
    assert response.status_code == 200, response.text
    state: dict[str, object] = response.json()
    return state


async def test_a_share_of_calls_fail_in_each_mode_and_are_counted(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await http.post("/_sim/config", json={"timeout_delay_s": 0})
    token = await token_for(http, misa_sim)
    await arm_random(http, rate=0.3, modes=MODES, seed=7)

    outcomes: Counter[str] = Counter()
    for _ in range(200):
        response = await get(http, token)
        if response.status_code == 500:
            outcomes["http_500"] += 1
        elif response.status_code == 429:
            assert response.headers["Retry-After"] == "1"
            outcomes["rate_limit"] += 1
        elif response.json()["ErrorCode"] == "ExpiredToken":
            outcomes["expired_token"] += 1
        else:
            assert response.json()["Success"] is True
            outcomes["ok"] += 1

    state = (await http.get("/_sim/faults/random")).json()
    injected = state["injected"]
    assert state["rate"] == 0.3 and state["seed"] == 7 and state["modes"] == MODES
    # A timeout still answers (after the delay, 0 here): only the count tells it apart.
    assert sum(injected.values()) == 200 - outcomes["ok"] + injected.get("timeout", 0)
    for mode in ("http_500", "rate_limit", "expired_token"):
        assert injected.get(mode, 0) == outcomes[mode]
    assert 30 <= sum(injected.values()) <= 90  # about 60 of 200
    assert set(injected) == set(MODES)


async def test_same_seed_same_faults(http: httpx.AsyncClient, misa_sim: MisaSimulator) -> None:
    token = await token_for(http, misa_sim)
    seen = []
    for _ in range(2):
        await arm_random(http, rate=0.5, modes=["http_500"], seed=42)
        seen.append([(await get(http, token)).status_code for _ in range(30)])
    assert seen[0] == seen[1] and 500 in seen[0] and 200 in seen[0]


async def test_rate_zero_disarms_and_reset_clears(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    token = await token_for(http, misa_sim)
    await arm_random(http, rate=1.0, modes=["http_500"])
    assert (await get(http, token)).status_code == 500
    assert (await arm_random(http, rate=0))["rate"] == 0
    assert (await get(http, token)).status_code == 200

    await arm_random(http, rate=1.0, modes=["http_500"])
    misa_sim.reset()
    state = (await http.get("/_sim/faults/random")).json()
    assert state["rate"] == 0 and state["injected"] == {}
    assert (await get(http, await token_for(http, misa_sim))).status_code == 200


async def test_counted_faults_go_first_and_controls_are_spared(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await arm_random(http, rate=1.0, modes=["rate_limit"])
    await http.post("/_sim/faults", json={"mode": "http_500", "count": 1})
    assert (
        await http.post("/api/oauth/actopen/connect", json=connect_body(misa_sim))
    ).status_code == (500)
    assert (
        await http.post("/api/oauth/actopen/connect", json=connect_body(misa_sim))
    ).status_code == (429)
    assert (await http.get("/_sim/account-objects")).status_code == 200


async def test_expired_token_never_hits_connect(
    http: httpx.AsyncClient, misa_sim: MisaSimulator
) -> None:
    await arm_random(http, rate=1.0, modes=["expired_token"])
    token = await token_for(http, misa_sim)  # connect carries no token: always answered
    assert (await get(http, token)).json()["ErrorCode"] == "ExpiredToken"


async def test_bad_requests_are_refused(http: httpx.AsyncClient) -> None:
    for body in ({"rate": 1.5}, {"rate": -0.1}, {"rate": 0.2, "modes": ["boom"]}, {"x": 1}):
        assert (await http.post("/_sim/faults/random", json=body)).status_code == 422


def test_draws_follow_the_rate() -> None:
    faults = RandomFaults()
    faults.arm(0.2, (FaultMode.HTTP_500, FaultMode.TIMEOUT), seed=1)
    drawn = [faults.draw(carries_token=True) for _ in range(10_000)]
    share = sum(d is not None for d in drawn) / len(drawn)
    assert 0.18 <= share <= 0.22
    assert {d for d in drawn if d is not None} == {FaultMode.HTTP_500, FaultMode.TIMEOUT}
