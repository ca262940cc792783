"""NAVER Cloud Platform Cloud Data Streaming Service (Kafka): the client (``client``) and its wire
models (``models``)."""

from __future__ import annotations

from shared.clouds.ncloud.client import NcloudClient, NcloudConfig

__all__ = ["NcloudClient", "NcloudConfig"]
