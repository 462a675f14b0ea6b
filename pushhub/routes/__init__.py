"""Thin HTTP, WebSocket and SSE handlers: parse, call the service or hub, answer."""
