"""OCP AK/SK golden vectors, checked by the client tests AND the simulator tests.

Built from OCP's documented toSignString layout (common-ocp-10000000002169100; vendor-facts §5.4):
seven lines — HttpMethod, Md5Payload (upper-hex MD5 of the body or ""), ContentType or "",
the Date (the page's own example date), Host ``host:port``, the sorted ``x-ocp-*`` headers (the
official OB-MCP client signs ``x-ocp-origin:mcp-server``) or "", and PathAndQueryParams (keys
sorted, ``quote(safe="")``, an array's values comma-joined). The page gives no worked signature,
so the expected values were computed outside Python, with coreutils and OpenSSL:

    printf '%s' "$BODY" | md5sum
    printf '%s' "$TO_SIGN" | openssl dgst -sha1 -hmac "$SK" -binary | base64
"""

from __future__ import annotations

__all__ = ["AK", "GET", "POST", "SK"]

AK = "AKIDEXAMPLE0000000001"
SK = "SKEXAMPLE/abcdefghijklmnopqrstuvwxyz0123"
DATE = "Tue, 17 Jan 2023 03:36:01 GMT"
HOST = "ocp.example.internal:8080"

#: An upgrade with the new body (the API page's example values).
POST = {
    "method": "POST",
    "body": b'{"upgradeMode":"ROLLING","destVersion":"2.2.77-202204041221","operatingSystem":"el7"}',
    "content_type": "application/json",
    "date": DATE,
    "host": HOST,
    "headers": {"x-ocp-origin": "mcp-server", "Accept": "application/json"},
    "path": "/api/v2/ob/clusters/22/upgrade",
    "query": [],
    "to_sign": (
        "POST\n0FD5735674F4D5E9BCBCCFFC0D60D58A\napplication/json\nTue, 17 Jan 2023 03:36:01 GMT\n"
        "ocp.example.internal:8080\nx-ocp-origin:mcp-server\n/api/v2/ob/clusters/22/upgrade"
    ),
    "signature": "H2MKMteajsqs06fBMHx+CGnTPoA=",
}

#: The upgrade-task search, unsorted on purpose: a space, a comma and an array parameter.
GET = {
    "method": "GET",
    "body": b"",
    "content_type": "",
    "date": DATE,
    "host": HOST,
    "headers": {},
    "path": "/api/v2/tasks/instances",
    "query": [
        ("status", "RUNNING"),
        ("sort", "id,desc"),
        ("name", "Submit upgrade OB cluster dag"),
        ("clusterId", "22"),
        ("status", "FAILED"),
        ("size", "100"),
        ("page", "1"),
    ],
    "to_sign": (
        "GET\n\n\nTue, 17 Jan 2023 03:36:01 GMT\nocp.example.internal:8080\n\n"
        "/api/v2/tasks/instances?clusterId=22&name=Submit%20upgrade%20OB%20cluster%20dag&page=1&size=100"
        "&sort=id%2Cdesc&status=RUNNING%2CFAILED"
    ),
    "signature": "jIHdzMjlT+07RrbKcUDCN8DIx9U=",
}
