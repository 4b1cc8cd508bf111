#include <stddef.h>
#include <stdint.h>
/* aiopb_cloop produces count messages to topic with settings kv (nkv name/value pairs)
 * (size bytes of value) after one warm-up message, and returns the nanoseconds from the first produce to the last delivery
 * report, or -1 with errstr set. */
int64_t aiopb_cloop(const char **kv, int nkv, const char *topic, int64_t count, const char *value, int size, char *errstr, size_t errlen);
