// Package aioproducertest helps you test code that produces with aioproducer, as net/http/httptest
// helps with HTTP: a Fake producer for unit tests, a mock Cluster for integration tests, ReadTopic to
// read a topic back, and a Ledger that checks the producer's promises.
//
// # Unit tests: Fake
//
// Write your code against aioproducer.Client, and give it a *aioproducer.Producer in production and a
// Fake in tests. A Fake is a real Producer over an in-memory broker: Futures, callbacks, channels,
// Flush and Close behave exactly as they do against Kafka, and no librdkafka is involved.
//
//	fake := aioproducertest.NewFake(t)                 // closed at the end of the test
//	svc := NewOrderService(fake)                        // takes an aioproducer.Client
//	require.NoError(t, svc.PlaceOrder(ctx, "42"))
//	msgs := fake.Messages()                             // what reached the broker, in order
//
// By default the Fake delivers each message at once, at the next offset of its partition; FailWith
// chooses an error for chosen messages. With ManualCompletion nothing completes until the test says
// so (CompleteNext, FailNext, Complete, CompleteAll, FailAll), which is how a test sees what the code
// does while a message is outstanding:
//
//	fake := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
//	go svc.PlaceOrder(ctx, "42")                        // waits for its Future
//	...
//	fake.FailNext(kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false))
//
// A message's partition is deterministic: an explicit one is kept, a non-empty key is hashed as
// librdkafka's default partitioner hashes it (CRC-32), null and empty keys (which it places at random)
// go round robin; WithPartitions sets a topic's partitions (default 1). Flush waits, as with Kafka,
// until every message accepted before it has its outcome: in manual mode, until the test completes
// them or ctx ends. Close waits likewise; when its ctx ends first, it fails what is still outstanding
// as the real Close does (an error wrapping aioproducer.ErrClosed). NotPersistedError,
// OutcomeUnknownError and FatalError fail a message as librdkafka classifies its failures.
//
// With Transactional the Fake is a transactional producer: the transactional calls work with the real
// producer's rules, Transactions records what each transaction took, the offsets sent to it and how it
// ended, and FenceProducer and FailNextTxn fail calls (MockProducer's fenceProducer and
// commitTransactionException). The Fake does not simulate librdkafka's settings or timeouts: test
// those against a Cluster.
//
// # Integration tests: Cluster
//
// NewCluster starts librdkafka's in-process mock cluster (no Docker, no JVM), which a real Producer
// talks to over TCP. It can take brokers down and up and delay their responses; ReadTopic, WaitRecords
// and Records read a topic back as Records (key, value, headers, timestamp, partition, offset).
//
//	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("orders", 3))
//	p := c.NewProducer(t, nil)                          // closed at the end of the test
//	... produce with p ...
//	recs := c.Records(t, "orders", 10)                  // waits for the 10 records
//
// The mock cluster has limits (no fencing of transactional producers, aborted transactional messages
// visible to read_committed consumers, a fixed LogAppendTime): see Cluster.
//
// # Checking the promises: Ledger
//
// A Ledger records every message produced and every outcome, then checks that each accepted message
// got exactly one outcome and that the topic holds exactly the delivered messages, once each, where
// their deliveries say, in produce order per key; CheckStats holds the producer's Stats to it.
// ReadTopic works against any cluster, so the same check runs against the mock cluster and a real
// one.
package aioproducertest
