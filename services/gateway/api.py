"""The gateway's HTTP API (FastAPI: the OpenAPI document at `/openapi.json` is generated from this
code). JSON throughout, money as decimal strings (the contracts' `Money`).

| method and path | does |
|---|---|
| `POST /v1/discharges`, `/v1/corrections`, `/v1/reversals` | validate as the contracts do, publish as the signed-in hospital to `hospital.<id>.requests`; 202 with the claim id and its status link, or with `?wait=` (≤ 10 s) 200 with the answer as soon as it exists |
| `POST /v1/pre-settlements` | 预结算: the statement a discharge would get now; changes nothing |
| `GET /v1/statements?since=` | the hospital's answers recorded after a cursor |
| `GET /v1/claims/{claim_id}` | one claim's status and history (another hospital's claim: 404) |
| `GET /healthz`, `/readyz`, `/metrics` | as every service's health endpoint (`runtime.health`) |

Everything under `/v1` needs a hospital's sign-in (HTTP Basic, `services.gateway.hospitals`): 401
without it or with wrong credentials.
"""


import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from contracts import (
    ContractError,
    DischargeCorrected,
    DischargeRecorded,
    ReversalRequested,
    SettlementStatement,
)
from runtime.health import Health
from runtime.logging import get_logger
from runtime.tracing import new_traceparent
from services.gateway import answers
from services.gateway.answers import AnswerRow, Waiters
from services.gateway.hospitals import BrokerUnavailable, HospitalSessions, NotSignedIn, Session
from services.gateway.presettlement import ClaimExists, LayerReader
from services.settlement import store
from tools.hospital.publish import Prepared, for_hospital, prepare_correction, prepare_discharge, prepare_reversal

log = get_logger("gateway.api")

MAX_WAIT_S = 10.0
MAX_PAGE = 1000
EventType = Literal["SettlementStatement", "SettlementAdjusted", "SettlementReversed", "ClaimRequestRefused"]
ClaimState = Literal["pending", "settled", "rejected", "reversed", "refused"]

REQUESTS = Counter("medsettle_gateway_requests", "HTTP requests answered by the gateway, per route and status",
                   ["route", "status"])
REQUEST_SECONDS = Histogram("medsettle_gateway_request_seconds", "Time to answer an HTTP request (a wait included)",
                            ["route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 12.5))


# ------------------------------------------------------------------------------ the documents


class Problem(BaseModel):
    detail: str = Field(description="why the request was not done")


class Answer(BaseModel):
    """One answer of the platform to the hospital, as its statements topic carries it."""

    cursor: int = Field(description="its place in the hospital's answers: GET /v1/statements?since=<cursor>")
    event_type: EventType
    event_id: uuid.UUID
    claim_id: str
    request_event_id: str | None = Field(description="the request it answers, where the answer names one")
    occurred_at: datetime
    payload: dict[str, Any] = Field(description="the contract named by event_type (money as decimal strings)")

    @classmethod
    def of(cls, row: AnswerRow) -> "Answer":
        return cls(cursor=row.seq, event_type=row.event_type, event_id=row.event_id,
                   claim_id=row.claim_id, request_event_id=row.request_event_id, occurred_at=row.occurred_at,
                   payload=row.payload)


class Accepted(BaseModel):
    """A request published on the hospital's requests topic; its answer is not there yet."""

    status: Literal["accepted"] = "accepted"
    claim_id: str
    request_event_id: uuid.UUID = Field(description="derived from the content: the same request sent again is one")
    status_url: str = Field(description="GET it for the claim's status and answers")


class Answers(BaseModel):
    items: list[Answer]
    next_cursor: int = Field(description="pass it as `since` to get what comes after")


class RequestRecord(BaseModel):
    request_event_id: uuid.UUID
    request_type: str
    accepted_at: datetime


class ClaimStatus(BaseModel):
    claim_id: str
    status: ClaimState = Field(description="pending (sent, not answered yet), settled or rejected (its latest "
                                           "statement), reversed, or refused (only refusals so far)")
    requests: list[RequestRecord] = Field(description="what was sent for it through the gateway")
    answers: list[Answer]


class PreSettlement(BaseModel):
    """预结算: the statement the discharge would get now. Nothing was stored or published."""

    statement: SettlementStatement
    claims_in_flight: bool = Field(description="a claim of the person is between the layers: the figures may "
                                               "change once it is settled")


# ------------------------------------------------------------------------------ the app


def claim_status(rows: list[AnswerRow]) -> ClaimState:
    for row in reversed(rows):
        if row.event_type == "SettlementReversed":
            return "reversed"
        if row.event_type in ("SettlementStatement", "SettlementAdjusted"):
            return "rejected" if row.payload.get("outcome") == "rejected" else "settled"
    return "refused" if rows else "pending"


class Gateway:
    """What the API needs of the running service."""

    def __init__(self, *, sessions: HospitalSessions, waiters: Waiters, layers: LayerReader,
                 pool: Callable[[], Any], topic: Callable[[str], str], policy: Callable[[], Any],
                 catch_up: Callable[[], Awaitable[None]], health: Callable[[], Health | None],
                 requests: answers.RequestLog) -> None:
        self.sessions, self.waiters, self.layers = sessions, waiters, layers
        self.pool, self.topic, self.policy, self.health = pool, topic, policy, health
        self.catch_up = catch_up
        self.requests = requests
        """where the requests sent through this instance are recorded"""
        """catches up the registry projections (persons, providers) to the topics' end"""


def create_api(gw: Gateway) -> FastAPI:
    app = FastAPI(title="medsettle hospital gateway", version="1",
                  description="One-stop settlement (一站式结算) for hospitals' information systems: discharges, "
                              "corrections, reversals, pre-settlement (预结算), statements. Sign in with the "
                              "hospital's broker credentials (HTTP Basic: hospital-<id> and its password).",
                  openapi_tags=[{"name": "claims"}, {"name": "statements"}])
    basic_auth = HTTPBasic(auto_error=False, description="the hospital's broker user hospital-<id> and its password")
    problems: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "no or wrong credentials"},
        503: {"model": Problem, "description": "the broker or database does not answer"}}

    async def hospital(credentials: Annotated[HTTPBasicCredentials | None, Depends(basic_auth)]) -> Session:
        challenge = {"WWW-Authenticate": 'Basic realm="medsettle"'}
        if credentials is None:
            raise HTTPException(401, "sign in with the hospital's broker credentials (HTTP Basic)", challenge)
        try:
            return await gw.sessions.sign_in(credentials.username, credentials.password)
        except NotSignedIn as exc:
            raise HTTPException(401, str(exc), challenge) from None
        except BrokerUnavailable as exc:
            raise HTTPException(503, str(exc)) from None

    SignedIn = Annotated[Session, Depends(hospital)]
    Wait = Annotated[float, Query(ge=0, le=MAX_WAIT_S, description=f"seconds (≤ {MAX_WAIT_S:g}) to wait for the answer")]

    def checked(session: Session, prepare: Callable[[Any], Prepared], body: Any) -> Prepared:
        """The message as the hospital's client would send it (`tools.hospital.publish`): checked as its
        consumer will decode it, on the hospital's own requests topic, or why not."""
        try:
            return for_hospital(prepare(body), session.hospital_id)
        except ContractError as exc:
            raise HTTPException(422, f"{exc.field or 'request'}: {exc.reason}") from None
        except ValueError as exc:  # another hospital's claim: the intake would refuse it too
            raise HTTPException(403, str(exc)) from None

    async def submit(session: Session, prepare: Callable[[Any], Prepared], body: Any, wait: float,
                     response: Response) -> Accepted | Response:
        message = checked(session, prepare, body)
        envelope = message.envelope
        claim_id, event_type = envelope.payload.claim_id, envelope.event_type
        deadline = time.monotonic() + wait
        traceparent = new_traceparent("gateway")
        headers = [("event_type", event_type.encode()), *((("traceparent", traceparent.encode()),) if traceparent
                                                           else ())]
        with gw.waiters.watching(claim_id) as woken:
            try:
                await session.producer.send_and_wait(gw.topic(message.topic), message.value,
                                                     key=message.key.encode(), headers=headers)
            except KafkaError as exc:
                raise HTTPException(503, f"the request could not be published: {type(exc).__name__}") from None
            try:
                await gw.requests.record(envelope.event_id, session.hospital_id, claim_id, event_type)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # published all the same
                log.warning("request not recorded", claim_id=claim_id, error=type(exc).__name__)
            while wait > 0:
                async with gw.pool().acquire() as conn:
                    found = await answers.answer_to(conn, session.hospital_id, claim_id, event_type,
                                                    envelope.event_id)
                if found is not None:
                    return Response(found.to_json(), media_type="application/json")
                if not await gw.waiters.until(woken, deadline):
                    break
        response.status_code = 202
        return Accepted(claim_id=claim_id, request_event_id=envelope.event_id, status_url=f"/v1/claims/{claim_id}")

    posted: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "the body is not JSON"},
        403: {"model": Problem, "description": "the body's hospital_id is not the signed-in hospital"},
        **problems}
    submitted: dict[int | str, dict[str, Any]] = {
        200: {"model": Answer, "description": "the answer (with `wait`, as soon as it exists)"},
        202: {"model": Accepted, "description": "published; poll the status link"}, **posted}

    @app.post("/v1/discharges", tags=["claims"], responses=submitted, response_model=Answer | Accepted,
              summary="Send a discharge (出院结算)")
    async def post_discharge(body: DischargeRecorded, session: SignedIn, response: Response,
                             wait: Wait = 0) -> Accepted | Response:
        return await submit(session, prepare_discharge, body, wait, response)

    @app.post("/v1/corrections", tags=["claims"], responses=submitted, response_model=Answer | Accepted,
              summary="Correct a settled claim (冲正后重新结算)")
    async def post_correction(body: DischargeCorrected, session: SignedIn, response: Response,
                              wait: Wait = 0) -> Accepted | Response:
        return await submit(session, prepare_correction, body, wait, response)

    @app.post("/v1/reversals", tags=["claims"], responses=submitted, response_model=Answer | Accepted,
              summary="Reverse a settled claim (冲正)")
    async def post_reversal(body: ReversalRequested, session: SignedIn, response: Response,
                            wait: Wait = 0) -> Accepted | Response:
        return await submit(session, prepare_reversal, body, wait, response)

    @app.post("/v1/pre-settlements", tags=["claims"], summary="Pre-settle a discharge (预结算, 2303)",
              responses={409: {"model": Problem, "description": "the claim is already settled"}, **posted})
    async def post_presettlement(body: DischargeRecorded, session: SignedIn) -> PreSettlement:
        message = checked(session, prepare_discharge, body)
        await gw.catch_up()
        async with gw.pool().acquire() as conn:
            person = (await store.load_persons(conn, [body.person_id])).get(body.person_id)
            provider = (await store.load_providers(conn, [body.hospital_id])).get(body.hospital_id)
        try:
            priced = await gw.layers.presettle(body, str(message.envelope.event_id), gw.policy(), person, provider)
        except ClaimExists as exc:
            raise HTTPException(409, str(exc)) from None
        return PreSettlement(statement=priced.statement, claims_in_flight=priced.claims_in_flight)

    @app.get("/v1/statements", tags=["statements"], responses=problems,
             summary="The hospital's statements, adjustments, reversals and refusals after a cursor")
    async def get_statements(session: SignedIn,
                             since: Annotated[int, Query(ge=0, le=2**63 - 1, description="a cursor; 0: from the "
                                                                                            "start")] = 0,
                             limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> Answers:
        async with gw.pool().acquire() as conn:
            rows = await answers.since(conn, session.hospital_id, since, limit)
        return Answers(items=[Answer.of(r) for r in rows], next_cursor=rows[-1].seq if rows else since)

    @app.get("/v1/claims/{claim_id}", tags=["statements"], summary="One claim's status and history",
             responses={404: {"model": Problem, "description": "no such claim of the signed-in hospital"},
                        **problems})
    async def get_claim(claim_id: str, session: SignedIn) -> ClaimStatus:
        async with gw.pool().acquire() as conn:
            rows, requests = await answers.of_claim(conn, session.hospital_id, claim_id)
        if not rows and not requests:
            raise HTTPException(404, f"no claim {claim_id} of hospital {session.hospital_id}")
        return ClaimStatus(claim_id=claim_id, status=claim_status(rows),
                           requests=[RequestRecord(request_event_id=r["event_id"], request_type=r["request_type"],
                                                   accepted_at=r["accepted_at"]) for r in requests],
                           answers=[Answer.of(r) for r in rows])

    # the service's health endpoint, on the API's port too (not in the OpenAPI document)
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"service": "gateway", "live": True}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        health = gw.health()
        if health is None:
            return JSONResponse({"service": "gateway", "ready": False, "failed": ["running"]}, 503)
        body = await health.readiness()
        return JSONResponse(body, 200 if body["ready"] else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        health = gw.health()
        if health is not None:
            await health.refresh_gauges()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Measured)
    return app


class Measured:
    """Counts and times every request per route (a plain ASGI middleware: Starlette's
    `BaseHTTPMiddleware` costs a task and a stream per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def sent(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            REQUESTS.labels(route, str(status[0])).inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - t0)
