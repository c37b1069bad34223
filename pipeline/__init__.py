"""Omnichannel support-message ingestion pipeline (faust-streaming on Kafka)."""

__version__ = "0.1.0"
