"""What one caller can make the service write or do: a request full of refused events is
one log line, and callers without valid credentials are limited per address."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from testkit.http import asgi_client
from testkit.logs import production_log_lines
from testkit.settings import make_settings
from testkit.tokens import token

ALIASES, PER_CALL = 30, 100


def aliased_batches() -> tuple[str, dict[str, object]]:
    """30 aliases of trackEvents with 100 events each, in one 4.8 KB-class document."""
    fields = " ".join(f"a{n}: trackEvents(inputs: $x) {{ status }}" for n in range(ALIASES))
    events = [{"appName": "admin-console", "eventType": "click", "clientEventId": f"f-{uuid.uuid4()}"}]
    return f"mutation($x: [TrackEventInput!]!) {{ {fields} }}", {"x": events * PER_CALL}


async def test_a_request_of_refused_events_writes_one_log_line(migrated_db: str, tmp_path: Path) -> None:
    settings = make_settings(migrated_db, tmp_path, rate_limit="1/minute")
    query, variables = aliased_batches()
    headers = {"authorization": f"Bearer {token(roles=['member'], subject='flooder')}", "user-agent": "Mozilla/5.0"}
    async with asgi_client(settings) as http:
        with production_log_lines() as lines:
            for _ in range(3):
                body = (await http.post("/graphql", json={"query": query, "variables": variables},
                                        headers=headers)).json()  # fmt: skip
                statuses = [result["status"] for n in range(ALIASES) for result in body["data"][f"a{n}"]]
                assert len(statuses) == ALIASES * PER_CALL
    drop_lines = [json.loads(line) for line in lines if '"events dropped"' in line]
    assert len(drop_lines) == 3  # one per request, not one per event
    assert sum(line["dropped"] for line in drop_lines) == 3 * ALIASES * PER_CALL - 1  # the first event was stored
    assert sum(len(line) for line in lines) < 10_000


async def test_callers_without_credentials_are_limited_per_address(migrated_db: str, tmp_path: Path) -> None:
    settings = make_settings(migrated_db, tmp_path, anonymous_rate_limit="50/minute")
    query = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status } }"
    variables = {"x": {"appName": "admin-console", "eventType": "click"}}
    async with asgi_client(settings) as http:
        with production_log_lines() as lines:
            answers = []
            for n in range(200):
                bad = {"authorization": "Bearer not-a-token"} if n % 2 else {}
                response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=bad)
                answers.append([error["extensions"]["code"] for error in response.json()["errors"]])
            member = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": "Mozilla/5.0"}
            signed_in = (await http.post("/graphql", json={"query": query, "variables": variables},
                                         headers=member)).json()  # fmt: skip
    assert answers[:50] == [["UNAUTHENTICATED"]] * 50
    assert answers[50:] == [["RATE_LIMITED"]] * 150
    assert signed_in["data"]["trackEvent"]["status"] == "ACCEPTED"  # callers with a token are not limited by it
    service = [line for line in lines if json.loads(line).get("logger") != "httpx"]  # not the test's own client
    assert not [line for line in service if "Traceback" in line or '"error"' in line]
    assert len(service) <= 201  # at most a line per request, none of them a traceback
