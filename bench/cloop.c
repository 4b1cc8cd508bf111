/* cloop.c - the ceiling: a plain C producer loop over the same librdkafka (the static archive
 * confluent-kafka-go bundles), declared through internal/rdk/aiop.h. Symbols are prefixed aiopb_. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aiop.h"
#include "cloop.h"

static int64_t aiopb_now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* aiopb_drain polls the main queue up to timeout_ms and counts delivered and failed reports. */
static void aiopb_drain(aiop_queue_t *q, int timeout_ms, int64_t *delivered, int64_t *failed) {
	static __thread const aiop_message_t *msgs[4096];
	aiop_event_t *ev;
	while ((ev = rd_kafka_queue_poll(q, timeout_ms)) != NULL) {
		if (rd_kafka_event_type(ev) == AIOP_EVENT_DR) {
			size_t n, i;
			while ((n = rd_kafka_event_message_array(ev, msgs, 4096)) > 0)
				for (i = 0; i < n; i++) {
					if (msgs[i]->err)
						(*failed)++;
					else
						(*delivered)++;
				}
		}
		rd_kafka_event_destroy(ev);
		timeout_ms = 0;
	}
}

int64_t aiopb_cloop(const char **kv, int nkv, const char *topic, int64_t count, const char *value, int size, char *errstr, size_t errlen) {
	aiop_conf_t *conf = rd_kafka_conf_new();
	aiop_rk_t *rk;
	aiop_queue_t *q;
	aiop_topic_t *rkt;
	char *buf;
	int64_t delivered = 0, failed = 0, i, start = 0, elapsed;
	int k;

	for (k = 0; k < nkv; k++)
		if (rd_kafka_conf_set(conf, kv[2 * k], kv[2 * k + 1], errstr, errlen) != AIOP_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	rd_kafka_conf_set_events(conf, AIOP_EVENT_DR);
	rk = rd_kafka_new(AIOP_PRODUCER, conf, errstr, errlen);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	q = rd_kafka_queue_get_main(rk);
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	buf = malloc(size > 0 ? size : 1);
	memcpy(buf, value, size);

	for (i = -1; i < count; i++) { /* i == -1: the warm-up message, before the clock starts */
		aiop_vu_t vu[4];
		aiop_error_t *err;
		vu[0].vtype = AIOP_VTYPE_RKT;
		vu[0].u.rkt = rkt;
		vu[1].vtype = AIOP_VTYPE_PARTITION;
		vu[1].u.i32 = -1;
		vu[2].vtype = AIOP_VTYPE_VALUE;
		vu[2].u.mem.ptr = buf;
		vu[2].u.mem.size = (size_t)size;
		vu[3].vtype = AIOP_VTYPE_MSGFLAGS;
		vu[3].u.i = AIOP_MSG_F_COPY;
		while ((err = rd_kafka_produceva(rk, vu, 4)) != NULL) {
			int code = rd_kafka_error_code(err);
			if (code != AIOP_ERR_QUEUE_FULL) {
				snprintf(errstr, errlen, "produce: %s", rd_kafka_error_string(err));
				rd_kafka_error_destroy(err);
				count = -2;
				goto out;
			}
			rd_kafka_error_destroy(err);
			aiopb_drain(q, 1, &delivered, &failed);
		}
		if (i == -1) {
			while (delivered + failed < 1)
				aiopb_drain(q, 100, &delivered, &failed);
			delivered = failed = 0;
			start = aiopb_now_ns();
		}
	}
	while (delivered + failed < count)
		aiopb_drain(q, 100, &delivered, &failed);
	elapsed = aiopb_now_ns() - start;
	if (failed > 0) {
		snprintf(errstr, errlen, "%lld messages failed", (long long)failed);
		count = -2;
	}
out:
	free(buf);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return count < 0 ? -1 : elapsed;
}

/* aiopb_drain_lat is aiopb_drain that also turns lat[i], the produce time of the message whose opaque is
 * i + 1, into its produce-to-delivery nanoseconds (one clock read per event: its reports came together). */
static void aiopb_drain_lat(aiop_queue_t *q, int timeout_ms, int64_t *delivered, int64_t *failed, int64_t *lat) {
	static __thread const aiop_message_t *msgs[4096];
	aiop_event_t *ev;
	while ((ev = rd_kafka_queue_poll(q, timeout_ms)) != NULL) {
		if (rd_kafka_event_type(ev) == AIOP_EVENT_DR) {
			int64_t now = aiopb_now_ns();
			size_t n, i;
			while ((n = rd_kafka_event_message_array(ev, msgs, 4096)) > 0)
				for (i = 0; i < n; i++) {
					uintptr_t op = (uintptr_t)msgs[i]->_private;
					if (msgs[i]->err)
						(*failed)++;
					else
						(*delivered)++;
					if (lat && op)
						lat[op - 1] = now - lat[op - 1];
				}
		}
		rd_kafka_event_destroy(ev);
		timeout_ms = 0;
	}
}

int64_t aiopb_cloop_multi(const char **kv, int nkv, const char **topics, int ntopics, const char *keys, int keylen,
                          int64_t nkeys, int64_t warm, int64_t count, const char *value, int size, int64_t *lat,
                          char *errstr, size_t errlen) {
	aiop_conf_t *conf = rd_kafka_conf_new();
	aiop_rk_t *rk;
	aiop_queue_t *q;
	aiop_topic_t **rkts;
	char *buf;
	int64_t delivered = 0, failed = 0, i, start = 0, elapsed = -1, passes[2];
	int k, pass;

	for (k = 0; k < nkv; k++)
		if (rd_kafka_conf_set(conf, kv[2 * k], kv[2 * k + 1], errstr, errlen) != AIOP_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	rd_kafka_conf_set_events(conf, AIOP_EVENT_DR);
	rk = rd_kafka_new(AIOP_PRODUCER, conf, errstr, errlen);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	q = rd_kafka_queue_get_main(rk);
	rkts = calloc((size_t)ntopics, sizeof(*rkts));
	buf = malloc(size > 0 ? size : 1);
	memcpy(buf, value, size);
	for (k = 0; k < ntopics; k++)
		if (!(rkts[k] = rd_kafka_topic_new(rk, topics[k], NULL))) {
			snprintf(errstr, errlen, "topic %s: no handle", topics[k]);
			goto out;
		}

	passes[0] = warm;
	passes[1] = count;
	for (pass = warm > 0 ? 0 : 1; pass < 2; pass++) {
		int64_t n = passes[pass];
		int64_t *plat = pass == 1 ? lat : NULL;
		delivered = failed = 0;
		start = aiopb_now_ns();
		for (i = 0; i < n; i++) {
			aiop_vu_t vu[6];
			aiop_error_t *err;
			int nvu = 0;
			vu[nvu].vtype = AIOP_VTYPE_RKT;
			vu[nvu++].u.rkt = rkts[i % ntopics];
			vu[nvu].vtype = AIOP_VTYPE_PARTITION;
			vu[nvu++].u.i32 = -1;
			vu[nvu].vtype = AIOP_VTYPE_VALUE;
			vu[nvu].u.mem.ptr = buf;
			vu[nvu++].u.mem.size = (size_t)size;
			vu[nvu].vtype = AIOP_VTYPE_MSGFLAGS;
			vu[nvu++].u.i = AIOP_MSG_F_COPY;
			if (nkeys > 0) {
				vu[nvu].vtype = AIOP_VTYPE_KEY;
				vu[nvu].u.mem.ptr = (void *)(keys + (i % nkeys) * keylen);
				vu[nvu++].u.mem.size = (size_t)keylen;
			}
			if (plat) {
				vu[nvu].vtype = AIOP_VTYPE_OPAQUE;
				vu[nvu++].u.ptr = (void *)(uintptr_t)(i + 1);
				plat[i] = aiopb_now_ns();
			}
			while ((err = rd_kafka_produceva(rk, vu, nvu)) != NULL) {
				int code = rd_kafka_error_code(err);
				if (code != AIOP_ERR_QUEUE_FULL) {
					snprintf(errstr, errlen, "produce: %s", rd_kafka_error_string(err));
					rd_kafka_error_destroy(err);
					elapsed = -1;
					goto out;
				}
				rd_kafka_error_destroy(err);
				aiopb_drain_lat(q, 1, &delivered, &failed, plat);
			}
		}
		while (delivered + failed < n)
			aiopb_drain_lat(q, 100, &delivered, &failed, plat);
		elapsed = aiopb_now_ns() - start;
		if (failed > 0) {
			snprintf(errstr, errlen, "%lld messages failed", (long long)failed);
			elapsed = -1;
			goto out;
		}
	}
out:
	free(buf);
	for (k = 0; k < ntopics; k++)
		if (rkts[k])
			rd_kafka_topic_destroy(rkts[k]);
	free(rkts);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return elapsed;
}
