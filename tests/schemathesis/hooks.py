"""Schemathesis hooks for `.ci/run`: half of the generated requests are steered to data that exists.

Random input rarely names a scan, a finding or a target the server may scan, so without these hooks
the fuzzing mostly meets "not found" and "invalid target", and the stateful phase can follow few of
the document's links. `.ci/run` scans a loopback lab site once before schemathesis starts and passes:

  VANTAGE_LAB_URL      the lab site (the server's SSRF allow-list admits its address)
  VANTAGE_SCAN_ID      the completed scan of it
  VANTAGE_FINGERPRINT  the fingerprint of one of that scan's findings

Which cases are steered depends only on the generated value, so a run replays with its seed.
"""

import os
import zlib

import schemathesis

LAB_URL = os.environ["VANTAGE_LAB_URL"]
SCAN_ID = os.environ["VANTAGE_SCAN_ID"]
FINGERPRINT = os.environ["VANTAGE_FINGERPRINT"]

# Operations whose body names a target to scan.
TARGET_BODIES = {("POST", "/api/v1/scans"), ("POST", "/api/v1/schedules")}


def _steered(value) -> bool:
    """Half of the generated values, chosen by their content."""
    return zlib.crc32(repr(value).encode()) % 2 == 0


def _operation(ctx):
    """(METHOD, path template) of the operation a value is generated for."""
    if ctx.operation is None:
        return ("", "")
    return (ctx.operation.method.upper(), ctx.operation.path)


@schemathesis.hook
def map_body(ctx, body):
    if _operation(ctx) in TARGET_BODIES and isinstance(body, dict) and _steered(body):
        body["target"] = LAB_URL
    return body


@schemathesis.hook
def map_path_parameters(ctx, parameters):
    if not parameters or not _steered(parameters):
        return parameters
    _, path = _operation(ctx)
    if "id" in parameters and path.startswith("/api/v1/scans/{id}"):
        parameters["id"] = SCAN_ID
    for name in ("fingerprint", "finding_id"):
        if name in parameters:
            parameters[name] = FINGERPRINT
    return parameters


@schemathesis.hook
def map_query(ctx, query):
    if not query or not _steered(query):
        return query
    for name in ("scan_a", "scan_b"):
        if name in query:
            query[name] = SCAN_ID
    return query
