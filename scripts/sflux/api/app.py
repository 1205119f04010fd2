"""The FastAPI application: read-only, bearer-token authenticated, every
request audited. Build it with create_app(); scripts/serve_api.py runs it
under uvicorn."""

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from sflux.api import views
from sflux.api.audit import AuditLog, scrub
from sflux.api.errors import ApiError
from sflux.api.models import ErrorBody, HealthResponse, MatrixResponse, TimeRangeResponse, TrendResponse
from sflux.api.personas import Persona, load_personas
from sflux.api.service import MartService
from sflux.api.settings import MART_TABLES, Settings
from sflux.api.snapshot import SnapshotReader
from sflux.api.tokens import TENANT_ID_PATTERN, TokenRecord, TokenVerifier

DESCRIPTION = """Read-only access to SantéFlux's analytics marts (aggregates only).

Authenticate with `Authorization: Bearer <token>`; the DPO issues tokens with
`scripts/api_tokens.py issue`. What a token may read follows its persona
(conf/personas.yml); a tenant token sees only its own tenant's rows. A cell
with too few people is `"suppressed": true` with null measures, never 0.
Every request is audited. See docs/api.md."""

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "A parameter is malformed (bad date, unknown tier, too long).",
        401: "Missing, wrong, expired or revoked token.",
        403: "The persona may not read this, or the token asks for another tenant.",
        404: "Unknown city (with the closest names).",
        503: "The marts are not built yet.",
    }.items()
}


@dataclass(frozen=True)
class Caller:
    token: TokenRecord
    persona: Persona


def error_response(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def json_body(body: bytes) -> Response:
    # Answers may be one tenant's data: no shared cache may keep them.
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


class AuditMiddleware:
    """Writes one audit record per HTTP request, when the status is known and
    before the response leaves. If the record cannot be written the client
    gets a 503 instead of the answer: nothing is served unaudited."""

    def __init__(self, app: Any, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        outcome = {"audited": False, "blocked": False}

        async def audited_send(message: dict) -> None:
            if message["type"] == "http.response.start" and not outcome["audited"]:
                outcome["audited"] = True
                try:
                    self.record(scope, state, message["status"], started)
                except OSError:
                    outcome["blocked"] = True
                    await send({"type": "http.response.start", "status": 503,
                                "headers": [(b"content-type", b"application/json")]})
                    await send({"type": "http.response.body", "body": b'{"error":"audit log unavailable"}'})
                    return
            if not outcome["blocked"]:
                await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not outcome["audited"]:
                self.record(scope, state, 500, started)
            raise

    def record(self, scope: dict, state: dict, status: int, started: float) -> None:
        token: TokenRecord | None = state.get("token")
        route = scope.get("route")
        fields: dict[str, Any] = {
            "token_id": token.token_id if token else None,
            "persona": token.persona if token else None,
            "tenant": token.tenant if token else None,
            "method": scope["method"],
            "endpoint": getattr(route, "path", None) or scrub(scope["path"]),
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "client": (scope.get("client") or ("?",))[0],
        }
        if "requested_tenant" in state:
            fields["requested_tenant"] = state["requested_tenant"]
        if "denied" in state:
            fields["denied"] = state["denied"]
        self.audit.write("request", **fields)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    personas = load_personas(settings.personas_file)
    verifier = TokenVerifier(settings.tokens_file)
    audit = AuditLog(settings.audit_file)
    service = MartService(SnapshotReader(settings.analytics_dir, recheck_seconds=settings.recheck_seconds))

    app = FastAPIOffline(title="SantéFlux governed API", version="1", description=DESCRIPTION, redoc_url=None)
    app.state.audit = audit
    app.state.service = service
    app.add_middleware(AuditMiddleware, audit=audit)
    bearer = HTTPBearer(auto_error=False, description="A token from `scripts/api_tokens.py issue`.")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "query")
        return error_response(400, f"{where}: {first.get('msg', 'invalid')}")

    def require(scope_name: str):
        async def authorize(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Caller:
            if credentials is None:
                raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
            token = verifier.authenticate(credentials.credentials)
            request.state.token = token
            persona = personas.get(token.persona)
            if persona is None:
                raise ApiError(403, f"persona {token.persona!r} is no longer declared in conf/personas.yml")
            if scope_name not in persona.api:
                raise ApiError(403, f"persona {persona.name!r} may not read {scope_name} (conf/personas.yml)")
            return Caller(token, persona)

        return authorize

    def scope_tenant(request: Request, caller: Caller, requested: str | None) -> str | None:
        """The tenant whose rows this request may see. A tenant token sees
        its own tenant only, whatever it asks for; other personas see all
        members unless they name a tenant."""
        if requested is not None:
            request.state.requested_tenant = scrub(requested)
        if caller.persona.tenant_scoped:
            if requested is not None and requested != caller.token.tenant:
                request.state.denied = "cross_tenant"
                raise ApiError(403, f"this token is scoped to tenant {caller.token.tenant!r}; it may not read another tenant")
            return caller.token.tenant
        if requested is not None and not TENANT_ID_PATTERN.fullmatch(requested):
            raise ApiError(400, "tenant is not a tenant id (letters, digits, '_', '.', '-'; at most 64)")
        return requested

    tenant_param = Query(None, description="A tenant id. A tenant token may omit it or name its own tenant only.")

    @app.get("/health", response_model=HealthResponse, responses={503: ERRORS[503]}, tags=["service"])
    async def health() -> JSONResponse:
        """Liveness and readiness; needs no token and returns no data."""
        marts = {table: service.reader.status(table) for table in MART_TABLES}
        ok = all(status != "missing" for status in marts.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "marts": marts}, status_code=200 if ok else 503)

    @app.get("/v1/matrix", response_model=MatrixResponse, responses=ERRORS, tags=["marts"])
    async def matrix(
        request: Request,
        caller: Annotated[Caller, Depends(require("matrix"))],
        tenant: str | None = tenant_param,
    ) -> Response:
        """The City Stress Matrix: every city x subscription tier."""
        scoped = scope_tenant(request, caller, tenant)
        return json_body(service.matrix_json(scoped, caller.persona.tenant_scoped))

    @app.get("/v1/trend", response_model=TrendResponse, responses=ERRORS, tags=["marts"])
    async def trend(
        request: Request,
        caller: Annotated[Caller, Depends(require("trend"))],
        city: str = Query(description="A city as in the matrix; case and accents may differ if unique."),
        date_from: str | None = Query(None, alias="from", description="First date, yyyy-MM-dd."),
        date_to: str | None = Query(None, alias="to", description="Last date, yyyy-MM-dd, inclusive."),
        tier: str | None = Query(None, description="One subscription tier (e.g. VIP); default every tier."),
        tenant: str | None = tenant_param,
    ) -> Response:
        """One city's daily heart-rate trend per tier."""
        scoped = scope_tenant(request, caller, tenant)
        start, end = views.parse_period(date_from, date_to)
        body = service.trend_json(scoped, caller.persona.tenant_scoped, city, start, end, tier)
        return json_body(body)

    @app.get("/v1/time-range", response_model=TimeRangeResponse, responses=ERRORS, tags=["marts"])
    async def time_range(
        request: Request,
        caller: Annotated[Caller, Depends(require("time_range"))],
        tenant: str | None = tenant_param,
    ) -> Response:
        """The first and last reading date in the marts."""
        scoped = scope_tenant(request, caller, tenant)
        return json_body(service.time_range_json(scoped, caller.persona.tenant_scoped))

    return app
