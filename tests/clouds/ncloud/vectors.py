"""Golden signature-v2 vectors, shared by the client's and the simulator's tests.

Computed per NAVER's documented algorithm (seed 004; vendor-facts §6) with a third, independent
implementation — ``openssl`` — not with either of ours:

    printf 'POST /api/v1/cluster/rollingUpgradePreCheck\\n1709716893293\\nANJNnR1jz1gUzaiS0aV2' \\
      | openssl dgst -sha256 -hmac 'sim-golden-secret-0123456789abcdef' -binary | base64

The access key and timestamp are seed 004's request example; its secret key is not published,
so the example's own signature cannot be reproduced and the secret here is ours. The second
vector carries a query that needs encoding (a space, ``+``, ``/``, ``=``, ``é``, ``한``), signed
percent-encoded exactly as sent — as NAVER's Java SDK does (``getRawPath() + "?" + getRawQuery()``).
"""

from __future__ import annotations

__all__ = ["ACCESS_KEY", "SECRET_KEY", "TIMESTAMP", "VECTORS"]

ACCESS_KEY = "ANJNnR1jz1gUzaiS0aV2"
SECRET_KEY = "sim-golden-secret-0123456789abcdef"
TIMESTAMP = "1709716893293"
#: (method, path with query as sent, expected x-ncp-apigw-signature-v2)
VECTORS = (
    ("POST", "/api/v1/cluster/rollingUpgradePreCheck", "D5IldALefbB9V4hKKnThB9HjMkhs6TbtsCF0eXmZAhA="),
    (
        "GET",
        "/api/v1/cluster/getCDSSVersionList?name=Kafka%203.9.0&q=a%2Bb%2F%3D%C3%A9%20%ED%95%9C",
        "sTD7r348vQrhurtO5BQCyu3K2+Y1EBzppsBCMyUvHqU=",
    ),
)
#: The second vector's query before encoding, in wire order.
QUERY = [("name", "Kafka 3.9.0"), ("q", "a+b/=é 한")]
