#!/usr/bin/env python3
"""A TCP proxy that adds round-trip delay, for links netem cannot shape here.

    delay-proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS

Every chunk read from either side is written to the other RTT_MS/2 later, in
order, so a request and its answer cost one extra RTT_MS; a new connection
waits one RTT_MS before anything is forwarded (what the TCP handshake costs on
such a link). The rate is not limited here: benches/lesson-edge.sh shapes it
with tbf. The proxy runs next to the client (in its namespace), so the edge's
own TCP connection still crosses the shaped link and TCP_INFO measures it.
Stops on SIGTERM/SIGINT.
"""

import asyncio
import os
import signal
import sys
import time


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk `delay` seconds after it arrived."""
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def main():
    listen, target, rtt_ms = split(sys.argv[1]), split(sys.argv[2]), float(sys.argv[3])
    one_way = rtt_ms / 2000.0

    async def handle(client_r, client_w):
        await asyncio.sleep(2 * one_way)
        try:
            up_r, up_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(client_r, up_w, one_way), pump(up_r, client_w, one_way))
        for w in (client_w, up_w):
            w.close()

    server = await asyncio.start_server(handle, *listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"delay-proxy: {sys.argv[1]} -> {sys.argv[2]}, +{rtt_ms:.0f} ms RTT", flush=True)
    async with server:
        await stop.wait()
    # Connections still open are cut, not drained: this is a bench's link.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
