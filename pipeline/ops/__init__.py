"""Operating the pipeline: Prometheus endpoint, ``pipeline status``, dead-letter replay, stats.

Everything here is generic over the topic catalogue, the ``pipeline.metrics`` snapshots and
the dead-letter record, so it covers every stage as stages land without knowing them.
"""
