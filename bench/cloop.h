#include <stddef.h>
#include <stdint.h>
/* aiopb_cloop produces count messages to topic with settings kv (nkv name/value pairs)
 * (size bytes of value) after one warm-up message, and returns the nanoseconds from the first produce to the last delivery
 * report, or -1 with errstr set. */
int64_t aiopb_cloop(const char **kv, int nkv, const char *topic, int64_t count, const char *value, int size, char *errstr, size_t errlen);
/* aiopb_cloop_multi produces a warm-up pass of warm messages, then a measured pass of count, round-robin
 * over ntopics topics (message i to topics[i % ntopics]) with, when nkeys > 0, the key of keylen bytes at
 * keys + (i % nkeys) * keylen, and waits for each pass's deliveries. When lat is not NULL (count entries) it
 * gets each measured message's produce-to-delivery nanoseconds. It returns the measured pass's nanoseconds
 * from its first produce to its last delivery report, or -1 with errstr set. */
int64_t aiopb_cloop_multi(const char **kv, int nkv, const char **topics, int ntopics, const char *keys, int keylen,
                          int64_t nkeys, int64_t warm, int64_t count, const char *value, int size, int64_t *lat,
                          char *errstr, size_t errlen);
