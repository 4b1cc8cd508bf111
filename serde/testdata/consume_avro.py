"""Reads messages back with the Python client, for aioproducer/serde's interop test.

    consume_avro.py BOOTSTRAP REGISTRY_URL TOPIC COUNT

Reads COUNT messages of TOPIC's partition 0 from the beginning with confluent_kafka's
DeserializingConsumer (keys: StringDeserializer; values: AvroDeserializer against the Schema Registry
at REGISTRY_URL) and prints each as one JSON line: offset, key, value. Exits non-zero if fewer arrive
within 60 s, or if a message cannot be deserialized.
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, DeserializingConsumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


def main() -> None:
    bootstrap, url, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    registry = SchemaRegistryClient({"url": url})
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "aioproducer-serde-interop",
            "enable.auto.commit": False,
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(registry),
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    deadline = time.monotonic() + 60
    try:
        while got < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                sys.exit(f"consume: {msg.error()}")
            print(json.dumps({"offset": msg.offset(), "key": msg.key(), "value": msg.value()}), flush=True)
            got += 1
    finally:
        consumer.close()
    if got < count:
        sys.exit(f"read {got} of {count} messages within 60 s")


if __name__ == "__main__":
    main()
