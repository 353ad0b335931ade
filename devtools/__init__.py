"""Development tools: the embedded sample WMS and the load generator (tests, bench)."""
