/* aiop.c - the C side of package rdk: one call enqueues a whole batch, one call drains thousands of
 * delivery reports. See aiop.h. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "aiop.h"

#define AIOP_MAX_BURST 8192
#define AIOP_STACK_VUS 64

struct aiop_h {
	aiop_rk_t *rk;
	aiop_queue_t *mainq;
	aiop_event_t *cur;  /* the delivery report event being drained */
	aiop_event_t *held; /* an error or log event handed to the caller, until aiop_release_event */
	aiop_event_t *next; /* an error or log event polled after reports: it waits for the next call */
	const aiop_message_t *msgs[AIOP_MAX_BURST];
};

int aiop_check_abi(void) {
	if (sizeof(aiop_message_t) != AIOP_MESSAGE_SIZE || sizeof(aiop_vu_t) != AIOP_VU_SIZE)
		return -1;
	if (offsetof(aiop_message_t, partition) != 16 || offsetof(aiop_message_t, offset) != 56 ||
	    offsetof(aiop_message_t, _private) != 64 || offsetof(aiop_vu_t, u) != 8)
		return -1;
	return 0;
}

/* The partition count the last observed partitioner call on this thread was given (-1: none since
 * aiop_produce reset it). librdkafka calls the partitioner synchronously inside rd_kafka_produceva for a
 * keyed message without a partition when it knows the topic's partitions. */
static __thread int32_t aiop_seen_cnt = -1;

/* By AIOP_PART_*: only the *_random ones. librdkafka compares the partitioner's address with consistent,
 * murmur2 and fnv1a to decide whether a null key gets the sticky partition, so wrapping those would
 * change it. */
static aiop_partitioner_t *const aiop_builtin[] = {
    NULL,
    rd_kafka_msg_partitioner_consistent_random,
    rd_kafka_msg_partitioner_murmur2_random,
    rd_kafka_msg_partitioner_fnv1a_random,
};

#define AIOP_OBSERVER(kind, fn)                                                                                \
	static int32_t aiop_observe_##kind(const aiop_topic_t *rkt, const void *key, size_t keylen, int32_t cnt, \
	                                   void *rkt_opaque, void *msg_opaque) {                                   \
		aiop_seen_cnt = cnt;                                                                                   \
		return fn(rkt, key, keylen, cnt, rkt_opaque, msg_opaque);                                              \
	}
AIOP_OBSERVER(consistent_random, rd_kafka_msg_partitioner_consistent_random)
AIOP_OBSERVER(murmur2_random, rd_kafka_msg_partitioner_murmur2_random)
AIOP_OBSERVER(fnv1a_random, rd_kafka_msg_partitioner_fnv1a_random)

static aiop_partitioner_t *const aiop_observers[] = {
    NULL,
    aiop_observe_consistent_random,
    aiop_observe_murmur2_random,
    aiop_observe_fnv1a_random,
};

int32_t aiop_partition(int kind, const void *key, size_t keylen, int32_t partition_cnt) {
	if (kind <= AIOP_PART_NONE || kind > AIOP_PART_FNV1A_RANDOM || !key || keylen == 0 || partition_cnt <= 0)
		return -1;
	return aiop_builtin[kind](NULL, key, keylen, partition_cnt, NULL, NULL);
}

aiop_h *aiop_open(aiop_conf_t *conf, int token_refresh, int stats, int partitioner, char *errstr, size_t errstr_size) {
	aiop_h *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(errstr, errstr_size, "out of memory");
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	if (partitioner > AIOP_PART_NONE && partitioner <= AIOP_PART_FNV1A_RANDOM) {
		aiop_tconf_t *tconf = rd_kafka_conf_get_default_topic_conf(conf);
		if (!tconf) {
			tconf = rd_kafka_topic_conf_new();
			rd_kafka_conf_set_default_topic_conf(conf, tconf); /* conf owns it */
		}
		rd_kafka_topic_conf_set_partitioner_cb(tconf, aiop_observers[partitioner]);
	}
	rd_kafka_conf_set_events(conf, AIOP_EVENT_DR | AIOP_EVENT_ERROR | AIOP_EVENT_LOG |
	                                   (token_refresh ? AIOP_EVENT_OAUTHBEARER_TOKEN_REFRESH : 0) |
	                                   (stats ? AIOP_EVENT_STATS : 0));
	h->rk = rd_kafka_new(AIOP_PRODUCER, conf, errstr, errstr_size);
	if (!h->rk) { /* conf is still ours */
		rd_kafka_conf_destroy(conf);
		free(h);
		return NULL;
	}
	h->mainq = rd_kafka_queue_get_main(h->rk);
	rd_kafka_set_log_queue(h->rk, NULL); /* log lines come to the main queue too */
	return h;
}

void aiop_close(aiop_h *h) {
	if (h->cur)
		rd_kafka_event_destroy(h->cur);
	if (h->held)
		rd_kafka_event_destroy(h->held);
	if (h->next)
		rd_kafka_event_destroy(h->next);
	rd_kafka_queue_destroy(h->mainq);
	rd_kafka_destroy(h->rk);
	free(h);
}

void aiop_wake(aiop_h *h) { rd_kafka_queue_yield(h->mainq); }

size_t aiop_produce(aiop_h *h, const aiop_rec_t *recs, size_t n, const char *arena, const aiop_hdr_t *hdrs,
                    aiop_perr_t *perr) {
	aiop_vu_t stack[AIOP_STACK_VUS];
	aiop_vu_t *vus = stack;
	size_t vcap = AIOP_STACK_VUS;
	const char *topic = NULL;
	aiop_topic_t *rkt = NULL;
	size_t i;

	perr->code = 0;
	perr->partition_cnt = -1;
	for (i = 0; i < n; i++) {
		const aiop_rec_t *r = &recs[i];
		const char *t = arena + r->topic_off;
		size_t need = 8 + (size_t)r->hdr_count, k = 0;
		aiop_error_t *err;
		int32_t j;

		if (need > vcap) {
			aiop_vu_t *nv = malloc(need * sizeof(*nv));
			if (!nv) {
				perr->code = AIOP_ERR_QUEUE_FULL;
				break;
			}
			if (vus != stack)
				free(vus);
			vus = nv;
			vcap = need;
		}
		if (!topic || (t != topic && strcmp(t, topic) != 0)) {
			if (rkt)
				rd_kafka_topic_destroy(rkt);
			rkt = rd_kafka_topic_new(h->rk, t, NULL);
			topic = t;
		}
		if (rkt) {
			vus[k].vtype = AIOP_VTYPE_RKT;
			vus[k++].u.rkt = rkt;
		} else { /* let produceva report why */
			vus[k].vtype = AIOP_VTYPE_TOPIC;
			vus[k++].u.cstr = t;
		}
		vus[k].vtype = AIOP_VTYPE_PARTITION;
		vus[k++].u.i32 = r->partition;
		vus[k].vtype = AIOP_VTYPE_MSGFLAGS;
		vus[k++].u.i = AIOP_MSG_F_COPY;
		if (r->val_len >= 0) {
			vus[k].vtype = AIOP_VTYPE_VALUE;
			vus[k].u.mem.ptr = (r->val_addr ? (void *)r->val_addr : (void *)(arena + r->val_off));
			vus[k++].u.mem.size = (size_t)r->val_len;
		}
		if (r->key_len >= 0) {
			vus[k].vtype = AIOP_VTYPE_KEY;
			vus[k].u.mem.ptr = (void *)(arena + r->key_off);
			vus[k++].u.mem.size = (size_t)r->key_len;
		}
		vus[k].vtype = AIOP_VTYPE_OPAQUE;
		vus[k++].u.ptr = (void *)(uintptr_t)r->opaque;
		if (r->timestamp) {
			vus[k].vtype = AIOP_VTYPE_TIMESTAMP;
			vus[k++].u.i64 = r->timestamp;
		}
		for (j = 0; j < r->hdr_count; j++) {
			const aiop_hdr_t *hd = &hdrs[r->hdr_first + j];
			vus[k].vtype = AIOP_VTYPE_HEADER;
			vus[k].u.header.name = arena + hd->name_off;
			vus[k].u.header.val = hd->val_len < 0 ? NULL : arena + hd->val_off;
			vus[k++].u.header.size = hd->val_len < 0 ? 0 : (ssize_t)hd->val_len;
		}
		if (r->partition < 0 && r->key_len > 0)
			aiop_seen_cnt = -1;
		err = rd_kafka_produceva(h->rk, vus, k);
		if (!err && r->partition < 0 && r->key_len > 0)
			perr->partition_cnt = aiop_seen_cnt;
		if (err) {
			const char *s = rd_kafka_error_string(err);
			perr->code = rd_kafka_error_code(err);
			perr->fatal = rd_kafka_error_is_fatal(err);
			snprintf(perr->str, sizeof(perr->str), "%s", s ? s : "");
			rd_kafka_error_destroy(err);
			break;
		}
	}
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (vus != stack)
		free(vus);
	return i;
}

/* fill_event describes ev (an error, log, token refresh or statistics event) in out and holds it until aiop_release_event. */
static void fill_event(aiop_h *h, aiop_event_t *ev, aiop_ev_t *out) {
	int type = rd_kafka_event_type(ev);
	h->held = ev;
	out->type = type;
	out->fac = NULL; /* not left pointing into an earlier, destroyed event */
	out->str = NULL;
	if (type == AIOP_EVENT_ERROR) {
		out->code = rd_kafka_event_error(ev);
		out->str = rd_kafka_event_error_string(ev);
		out->fatal = rd_kafka_event_error_is_fatal(ev);
		if (out->fatal) {
			/* The event says _FATAL; the client knows the error behind it. */
			out->fatal_str[0] = '\0';
			out->code = rd_kafka_fatal_error(h->rk, out->fatal_str, sizeof(out->fatal_str));
		}
	} else if (type == AIOP_EVENT_LOG) {
		int level = 0;
		rd_kafka_event_log(ev, &out->fac, &out->str, &level);
		out->level = level;
	} else if (type == AIOP_EVENT_OAUTHBEARER_TOKEN_REFRESH) {
		out->str = rd_kafka_event_config_string(ev);
	} else if (type == AIOP_EVENT_STATS) {
		out->str = rd_kafka_event_stats(ev);
	}
}

size_t aiop_poll(aiop_h *h, int timeout_ms, aiop_dr_t *out, size_t cap, aiop_ev_t *evout) {
	size_t n = 0;

	evout->type = 0;
	if (cap > AIOP_MAX_BURST)
		cap = AIOP_MAX_BURST;
	if (h->held) {
		rd_kafka_event_destroy(h->held);
		h->held = NULL;
	}
	for (;;) {
		aiop_event_t *ev;
		if (h->cur) {
			size_t got = rd_kafka_event_message_array(h->cur, h->msgs, cap - n), i;
			for (i = 0; i < got; i++) {
				const aiop_message_t *m = h->msgs[i];
				int tstype = 0;
				aiop_dr_t *d = &out[n + i];
				d->opaque = (uint64_t)(uintptr_t)m->_private;
				d->err = m->err;
				d->partition = m->partition;
				d->offset = m->offset;
				d->timestamp = rd_kafka_message_timestamp(m, &tstype);
				d->tstype = tstype;
				d->status = rd_kafka_message_status(m);
			}
			n += got;
			if (n == cap)
				return n; /* the event may hold more: next call */
			rd_kafka_event_destroy(h->cur);
			h->cur = NULL;
		}
		if (h->next) { /* an error or log event that came after the reports already returned */
			if (n > 0)
				return n;
			ev = h->next;
			h->next = NULL;
			fill_event(h, ev, evout);
			return 0;
		}
		ev = rd_kafka_queue_poll(h->mainq, n > 0 ? 0 : timeout_ms);
		if (!ev)
			return n;
		switch (rd_kafka_event_type(ev)) {
		case AIOP_EVENT_DR:
			h->cur = ev;
			continue;
		case AIOP_EVENT_ERROR:
		case AIOP_EVENT_LOG:
		case AIOP_EVENT_OAUTHBEARER_TOKEN_REFRESH:
		case AIOP_EVENT_STATS:
			if (n > 0) { /* reports first: they happened before */
				h->next = ev;
				return n;
			}
			fill_event(h, ev, evout);
			return 0;
		default:
			rd_kafka_event_destroy(ev);
			if (n > 0)
				return n;
			timeout_ms = 0;
		}
	}
}

void aiop_release_event(aiop_h *h) {
	if (h->held) {
		rd_kafka_event_destroy(h->held);
		h->held = NULL;
	}
}

int aiop_purge(aiop_h *h, int flags) { return rd_kafka_purge(h->rk, flags); }

int aiop_test_fatal(aiop_h *h, int code, const char *reason) { return rd_kafka_test_fatal_error(h->rk, code, reason); }

int aiop_fatal_error(aiop_h *h, char *errstr, size_t errstr_size) { return rd_kafka_fatal_error(h->rk, errstr, errstr_size); }

const char *aiop_name(aiop_h *h) { return rd_kafka_name(h->rk); }

int aiop_outq_len(aiop_h *h) { return rd_kafka_outq_len(h->rk); }

int aiop_flush(aiop_h *h, int timeout_ms) { return rd_kafka_flush(h->rk, timeout_ms); }

int aiop_check_setting(const char *name, const char *value, char *errstr, size_t errstr_size) {
	aiop_conf_t *conf = rd_kafka_conf_new();
	int r = rd_kafka_conf_set(conf, name, value, errstr, errstr_size);
	rd_kafka_conf_destroy(conf);
	return r;
}

/* txn_error fills out from err (NULL: no error) and destroys err. */
static void txn_error(aiop_error_t *err, aiop_txnerr_t *out) {
	memset(out, 0, sizeof(*out));
	if (!err)
		return;
	out->code = rd_kafka_error_code(err);
	out->fatal = rd_kafka_error_is_fatal(err);
	out->retriable = rd_kafka_error_is_retriable(err);
	out->abortable = rd_kafka_error_txn_requires_abort(err);
	snprintf(out->str, sizeof(out->str), "%s", rd_kafka_error_string(err) ? rd_kafka_error_string(err) : "");
	rd_kafka_error_destroy(err);
}

void aiop_txn(aiop_h *h, int op, int timeout_ms, aiop_txnerr_t *out) {
	aiop_error_t *err = NULL;
	switch (op) {
	case AIOP_TXN_INIT:
		err = rd_kafka_init_transactions(h->rk, timeout_ms);
		break;
	case AIOP_TXN_BEGIN:
		err = rd_kafka_begin_transaction(h->rk);
		break;
	case AIOP_TXN_COMMIT:
		err = rd_kafka_commit_transaction(h->rk, timeout_ms);
		break;
	case AIOP_TXN_ABORT:
		err = rd_kafka_abort_transaction(h->rk, timeout_ms);
		break;
	}
	txn_error(err, out);
}

void aiop_send_offsets(aiop_h *h, const aiop_offset_t *offs, size_t n, const char *arena, const void *cgmd,
                       size_t cgmd_size, int timeout_ms, aiop_txnerr_t *out) {
	aiop_cgmd_t *md = NULL;
	aiop_tplist_t *list;
	aiop_error_t *err;
	size_t i;

	err = rd_kafka_consumer_group_metadata_read(&md, cgmd, cgmd_size);
	if (err) {
		txn_error(err, out);
		return;
	}
	list = rd_kafka_topic_partition_list_new((int)n);
	for (i = 0; i < n; i++) {
		const char *topic = arena + offs[i].topic_off;
		aiop_tpar_t *tp = rd_kafka_topic_partition_list_add(list, topic, offs[i].partition);
		rd_kafka_topic_partition_list_set_offset(list, topic, offs[i].partition, offs[i].offset);
		if (offs[i].leader_epoch >= 0)
			rd_kafka_topic_partition_set_leader_epoch(tp, offs[i].leader_epoch);
	}
	err = rd_kafka_send_offsets_to_transaction(h->rk, list, md, timeout_ms);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_consumer_group_metadata_destroy(md);
	txn_error(err, out);
}

int aiop_set_token(aiop_h *h, const char *value, int64_t lifetime_ms, const char *principal, const char **exts,
                   size_t n, char *errstr, size_t errstr_size) {
	return rd_kafka_oauthbearer_set_token(h->rk, value, lifetime_ms, principal, exts, n, errstr, errstr_size);
}

int aiop_set_token_failure(aiop_h *h, const char *errstr) { return rd_kafka_oauthbearer_set_token_failure(h->rk, errstr); }

void aiop_set_credentials(aiop_h *h, const char *user, const char *pass, aiop_txnerr_t *out) {
	txn_error(rd_kafka_sasl_set_credentials(h->rk, user, pass), out);
}
