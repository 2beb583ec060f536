"""Many machines, one dashboard: servers that share a Redis (docs/cluster.md).

Each node publishes its own sessions (their list, every output, a heartbeat) and takes
orders for them from a queue of its own (owner.py); it serves every other node's sessions
through mirrors fed from Redis streams (mirror.py, gateway.py). `Cluster` (node.py) is what
the API sees. Nothing here is imported without `--redis`.
"""
