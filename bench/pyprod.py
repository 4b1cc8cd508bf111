"""pyprod.py - the Python rows of bench/ -broker: confluent-kafka's AIOProducer (confluent_kafka.aio) or its
synchronous Producer, same settings as every other client (acks=all, idempotence, linger.ms, compression).

    python pyprod.py aio|sync BOOTSTRAP TOPIC COMPRESSION COUNT WARM PAYLOAD_FILE [LINGER_MS]

Produces WARM messages (a warm-up pass, not measured), then COUNT messages of the payload file's bytes,
and prints "RESULT <nanoseconds from the first produce to the last delivery> 0" on stdout.
"""
import asyncio
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.aio import AIOProducer


def conf(bootstrap, comp, linger):
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": linger,
        "compression.type": comp,
    }


async def run_aio(c, topic, count, warm, value):
    p = AIOProducer(c)
    try:
        async def one_pass(n):
            futs = []
            start = time.perf_counter_ns()
            for _ in range(n):
                futs.append(await p.produce(topic, value=value))
            await p.flush()
            await asyncio.gather(*futs)  # raises on the first failed message
            return time.perf_counter_ns() - start

        await one_pass(1)
        if warm > 0:
            await one_pass(warm)
        return await one_pass(count)
    finally:
        await p.close()


def run_sync(c, topic, count, warm, value):
    p = Producer(c)
    failed = [0]

    def on_delivery(err, _msg):
        if err is not None:
            failed[0] += 1

    def one_pass(n):
        start = time.perf_counter_ns()
        for _ in range(n):
            while True:
                try:
                    p.produce(topic, value, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.001)
            p.poll(0)
        p.flush()
        return time.perf_counter_ns() - start

    one_pass(1)
    if warm > 0:
        one_pass(warm)
    ns = one_pass(count)
    if failed[0]:
        raise RuntimeError(f"{failed[0]} messages failed")
    return ns


def main():
    mode, bootstrap, topic, comp, count, warm, path = sys.argv[1:8]
    linger = int(sys.argv[8]) if len(sys.argv) > 8 else 5
    with open(path, "rb") as f:
        value = f.read()
    c = conf(bootstrap, comp, linger)
    if mode == "aio":
        ns = asyncio.run(run_aio(c, topic, int(count), int(warm), value))
    else:
        ns = run_sync(c, topic, int(count), int(warm), value)
    print(f"RESULT {ns} 0", flush=True)


if __name__ == "__main__":
    main()
