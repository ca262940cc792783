"""NAVER Cloud Platform Cloud Data Streaming Service (Kafka): the client (``client``) and its wire models (``models``)."""
