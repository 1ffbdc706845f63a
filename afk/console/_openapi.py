"""The OpenAPI 3.1 document of the console's JSON API (``/api/v1/openapi.json``), written by
hand: the API is small, and a generator would need a framework's models for each body."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT = {"type": "object"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    why = {
        401: "no valid API token (WWW-Authenticate: Bearer)",
        403: "the principal may not decide this request",
        404: "no such request or run",
        409: "already decided (error.first_decision names the decision that stands)",
        410: "the request passed its deadline",
        422: "a body, parameter or argument that does not fit (error.field names it)",
    }
    return {str(code): _json(_ERROR, why[code]) for code in (401, *codes)}


def _param(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": "string", **schema},
    }


_CURSOR = _param("cursor", "query", "the next_cursor of the page before")
_LIMIT = _param("limit", "query", "page size, 1 to 1000 (50)", pattern="^[0-9]+$")
_PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": _OBJECT},
        "next_cursor": {"type": ["string", "null"]},
    },
}
_DECISION = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"enum": ["allow", "deny"]},
        "reason": {"type": ["string", "null"]},
        "updated_tool_args": {"type": ["object", "null"]},
        "grant": {
            "type": ["object", "null"],
            "properties": {
                "scope": {"enum": ["thread", "agent", "user"]},
                "until": {"type": "number", "description": "epoch seconds"},
                "when": {"type": "object"},
            },
            "required": ["scope", "until"],
        },
        "stop_run": {"type": "boolean"},
        "value": {"type": "string", "description": "the answer to a user-input request"},
    },
    "description": "Who decides is the authenticated principal; an approver field is ignored.",
}


def openapi() -> dict[str, Any]:
    """The document."""
    request_id = _param("request_id", "path", "request id")
    return {
        "openapi": "3.1.0",
        "info": {"title": "afk decision API", "version": "1"},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string"},
                                "first_decision": _OBJECT,
                            },
                        }
                    },
                },
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/api/v1/requests": {
                "get": {
                    "summary": "requests, oldest first or soonest deadline first, a page at a time",
                    "parameters": [
                        _param("status", "query", "pending (default), decided, expired or all"),
                        _param("run", "query", "only this run's requests"),
                        _param(
                            "order",
                            "query",
                            "expires: soonest deadline first, of pending requests or of one "
                            "run's (the default for pending requests across runs); created: "
                            "oldest first (the default otherwise)",
                            enum=["created", "expires"],
                        ),
                        _param("tool", "query", "only pending requests for this tool"),
                        _param("rule", "query", "only pending requests this policy rule opened"),
                        _param("agent", "query", "only pending requests of this agent"),
                        _CURSOR,
                        _LIMIT,
                    ],
                    "responses": {"200": _json(_PAGE, "one page"), **_errors(422)},
                }
            },
            "/api/v1/requests/{request_id}": {
                "get": {
                    "summary": "one request: exact arguments, tool schema, rule, reason, votes, "
                    "who may decide, deadline, decision",
                    "parameters": [request_id],
                    "responses": {"200": _json(_OBJECT, "the request"), **_errors(404)},
                }
            },
            "/api/v1/requests/{request_id}/decision": {
                "post": {
                    "summary": "decide as the authenticated principal",
                    "parameters": [
                        request_id,
                        _param(
                            "Idempotency-Key",
                            "header",
                            "a retry with the same key gets the first answer",
                        ),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _DECISION}},
                    },
                    "responses": {
                        "200": _json(
                            _OBJECT,
                            "recorded: the decision that stands, or "
                            "status pending for a quorum vote",
                        ),
                        **_errors(403, 404, 409, 410, 422),
                    },
                }
            },
            "/api/v1/runs": {
                "get": {
                    "summary": "runs, most recently updated first",
                    "parameters": [
                        _param("status", "query", "a run status, or all (default)"),
                        _CURSOR,
                        _LIMIT,
                    ],
                    "responses": {"200": _json(_PAGE, "one page"), **_errors(422)},
                }
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "summary": "one run and its first 100 requests",
                    "parameters": [_param("run_id", "path", "run id")],
                    "responses": {"200": _json(_OBJECT, "the run"), **_errors(404)},
                }
            },
            "/api/v1/events": {
                "get": {
                    "summary": "Server-Sent Events: request_opened, request_decided, "
                    "request_expired, vote_counted; the id is the ledger id (Last-Event-ID)",
                    "parameters": [_param("after", "query", "a ledger id to start after")],
                    "responses": {
                        "200": {
                            "description": "the stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(422),
                    },
                }
            },
        },
    }
