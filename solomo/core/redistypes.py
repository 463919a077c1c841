"""The data Redis client type: one server (``Redis``) or a Redis Cluster (``RedisCluster``).

``SOLOMO_REDIS_CLUSTER`` picks one in :func:`solomo.services.redis_client`; the code above is the
same for both (cluster-safe keys, :mod:`solomo.core.scripts`).
"""

from __future__ import annotations

from redis.asyncio import Redis, RedisCluster

RedisClient = Redis | RedisCluster
