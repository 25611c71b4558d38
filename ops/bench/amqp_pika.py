"""The baseline for ops/bench/amqp: the same workload with Python's pika.

Publishes N persistent messages of SIZE bytes into a quorum queue with
publisher confirms, keeping WINDOW unconfirmed (pika's asynchronous
SelectConnection, the fast way to use pika), then consumes and acks them all.
Prints one JSON line like the Swift client.
"""
import json
import sys
import time

import pika

url, count, size, window, prefetch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
QUEUE = "bench.amqp.pika"
body = b"x" * size
props = pika.BasicProperties(delivery_mode=2)
state = {"sent": 0, "confirmed": 0, "received": 0, "t0": 0.0, "pub_s": 0.0, "t1": 0.0, "con_s": 0.0}


def on_open(conn):
    conn.channel(on_open_callback=on_channel)


def on_channel(ch):
    state["ch"] = ch
    ch.queue_delete(QUEUE, callback=lambda _f: ch.queue_declare(
        QUEUE, durable=True, arguments={"x-queue-type": "quorum"}, callback=on_declared))


def on_declared(_frame):
    ch = state["ch"]
    ch.confirm_delivery(on_confirm, callback=lambda _f: start_publishing())


def start_publishing():
    state["t0"] = time.perf_counter()
    fill_window()


def fill_window():
    ch = state["ch"]
    while state["sent"] < count and state["sent"] - state["confirmed"] < window:
        ch.basic_publish("", QUEUE, body, props)
        state["sent"] += 1


def on_confirm(frame):
    method = frame.method
    if isinstance(method, pika.spec.Basic.Nack):
        raise SystemExit("broker nacked a message")
    tag = method.delivery_tag
    state["confirmed"] = tag if method.multiple else max(state["confirmed"], tag)
    if state["confirmed"] >= count:
        state["pub_s"] = time.perf_counter() - state["t0"]
        start_consuming()
    else:
        fill_window()


def start_consuming():
    ch = state["ch"]
    state["t1"] = time.perf_counter()
    ch.basic_qos(prefetch_count=prefetch, callback=lambda _f: ch.basic_consume(QUEUE, on_message))


def on_message(ch, method, _props, _body):
    ch.basic_ack(method.delivery_tag)
    state["received"] += 1
    if state["received"] == count:
        state["con_s"] = time.perf_counter() - state["t1"]
        ch.queue_delete(QUEUE, callback=lambda _f: state["conn"].close())


params = pika.URLParameters(url)
# The ioloop runs until told to stop: stop it when the connection closes,
# whether we closed it after the last ack or the broker closed it on an error.
conn = pika.SelectConnection(params, on_open_callback=on_open,
                             on_open_error_callback=lambda _c, err: (print(f"pika: cannot connect: {err}", file=sys.stderr), _c.ioloop.stop()),
                             on_close_callback=lambda c, _reason: c.ioloop.stop())
state["conn"] = conn
conn.ioloop.start()
if state["received"] < count:
    raise SystemExit(f"pika: stopped after {state['received']} of {count} messages")
print(json.dumps({"client": "pika", "messages": count, "size": size,
                  "publish_per_s": int(count / state["pub_s"]), "consume_per_s": int(count / state["con_s"])}))
