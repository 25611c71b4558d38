"""A TCP relay for HostCutTests: the private broker listens on loopback only,
so the test's network namespaces ("hosts") reach it through this relay, which
listens on each host's root-side veth address and forwards to the broker.

    relay.py --target 127.0.0.1:5682 --listen 10.231.7.1:5682 --listen 10.231.8.1:5682

Prints "ready" on stdout once every listener is bound. When either side of a
relayed connection closes or fails, the other side is aborted at once (no
flush: a cut link would hold a graceful close forever), so the broker's end
of a cut host's connection goes away when the broker drops it (heartbeat
timeout), as it would if the host were reaching the broker directly.
Stops on SIGTERM.
"""
import argparse
import asyncio
import signal
import sys


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def pipe(reader, writer, other):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        for w in (writer, other):
            try:
                w.transport.abort()
            except Exception:
                pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--listen", action="append", required=True)
    args = parser.parse_args()
    target_host, target_port = host_port(args.target)

    async def handle(client_reader, client_writer):
        peer = client_writer.get_extra_info("peername")
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError as e:
            print(f"cannot reach {args.target} for {peer}: {e}", flush=True)
            client_writer.transport.abort()
            return
        print(f"relaying {peer} -> {args.target}", flush=True)
        await asyncio.gather(pipe(client_reader, up_writer, client_writer),
                             pipe(up_reader, client_writer, up_writer))
        print(f"closed {peer}", flush=True)

    servers = []
    for spec in args.listen:
        host, port = host_port(spec)
        servers.append(await asyncio.start_server(handle, host, port, reuse_address=True))
    print("ready", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
