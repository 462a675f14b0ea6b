"""Stores that keep blogs durable and carry their events between nodes."""

from pushhub.brokers.base import Broker, BrokerListener, Change, Committed

__all__ = ["Broker", "BrokerListener", "Change", "Committed"]
