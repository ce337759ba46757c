"""Minimal genred client: print each source's smoothed genre as predictions arrive.

Usage: python examples/client.py [ws://127.0.0.1:8765/] [SOURCE ...]
"""

import asyncio
import json
import sys

import websockets


async def main(url: str, sources: list[str]) -> None:
    """Connect, optionally subscribe to some sources, print events."""
    async with websockets.connect(url) as ws:
        hello = json.loads(await ws.recv())
        print(f"model {hello['model']}, labels {', '.join(hello['labels'])}")
        if sources:
            await ws.send(json.dumps({"type": "subscribe", "sources": sources}))
        async for text in ws:
            event = json.loads(text)
            if event["type"] == "prediction":
                print(f"{event['source']}: {event['genre']} ({event['confidence']:.0%}) "
                      f"at {event['window_end_ms'] / 1000:.1f} s")
            elif event["type"] == "status":
                print(f"{event['source']} is {event['state']} {event['message'] or ''}")
            elif event["type"] == "error":
                print(f"error {event['code']}: {event['message']}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    address = arguments.pop(0) if arguments else "ws://127.0.0.1:8765/"
    asyncio.run(main(address, arguments))
