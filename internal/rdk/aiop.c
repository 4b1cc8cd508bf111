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
	int part; /* the AIOP_PART_* partitioner installed wrapped, AIOP_PART_NONE if none */
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
/* The partition that call returned. */
static __thread int32_t aiop_seen_part = -1;

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
		return aiop_seen_part = fn(rkt, key, keylen, cnt, rkt_opaque, msg_opaque);                             \
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
	h->part = (partitioner > AIOP_PART_NONE && partitioner <= AIOP_PART_FNV1A_RANDOM) ? partitioner : AIOP_PART_NONE;
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

/* Whether every event queued so far has been handed to the caller: none held back, the queue empty.
 * Called between aiop_poll calls, by their one caller. */
int aiop_drained(aiop_h *h) { return !h->cur && !h->next && rd_kafka_queue_length(h->mainq) == 0; }

aiop_topic_t *aiop_topic(aiop_h *h, const char *name) { return rd_kafka_topic_new(h->rk, name, NULL); }

/* The scratch memory of one aiop_produce call: on the stack while it fits, else malloc'ed. Calls run
 * concurrently (one per worker), so nothing of it lives in aiop_h. */
#define AIOP_STACK_RECS 256
struct aiop_scratch {
	aiop_vu_t vstack[AIOP_STACK_VUS];
	aiop_vu_t *vus;
	size_t vcap;
	int32_t estack[AIOP_STACK_RECS], istack[AIOP_STACK_RECS], cstack[AIOP_STACK_RECS];
	int32_t *eff, *idx, *cnt; /* per record of a run: its partition, the grouped order; per partition: counts */
	size_t rcap, ccap;
};

static void scratch_free(struct aiop_scratch *s) {
	if (s->vus != s->vstack)
		free(s->vus);
	if (s->eff != s->estack) {
		free(s->eff);
		free(s->idx);
	}
	if (s->cnt != s->cstack)
		free(s->cnt);
}

/* scratch_recs makes room for n records' partitions and order; 0 on success. */
static int scratch_recs(struct aiop_scratch *s, size_t n) {
	int32_t *e, *i;
	if (n <= s->rcap)
		return 0;
	e = malloc(n * sizeof(*e));
	i = malloc(n * sizeof(*i));
	if (!e || !i) {
		free(e);
		free(i);
		return -1;
	}
	if (s->eff != s->estack) {
		free(s->eff);
		free(s->idx);
	}
	s->eff = e;
	s->idx = i;
	s->rcap = n;
	return 0;
}

/* produce_rec enqueues r to partition (-1: librdkafka's partitioner decides). */
static aiop_error_t *produce_rec(aiop_h *h, struct aiop_scratch *s, const aiop_rec_t *r, int32_t partition,
                                 const char *arena, const aiop_hdr_t *hdrs, int *oom) {
	size_t need = 8 + (size_t)r->hdr_count, k = 0;
	int32_t j;

	if (need > s->vcap) {
		aiop_vu_t *nv = malloc(need * sizeof(*nv));
		if (!nv) {
			*oom = 1;
			return NULL;
		}
		if (s->vus != s->vstack)
			free(s->vus);
		s->vus = nv;
		s->vcap = need;
	}
	s->vus[k].vtype = AIOP_VTYPE_RKT;
	s->vus[k++].u.rkt = (aiop_topic_t *)(uintptr_t)r->rkt;
	s->vus[k].vtype = AIOP_VTYPE_PARTITION;
	s->vus[k++].u.i32 = partition;
	s->vus[k].vtype = AIOP_VTYPE_MSGFLAGS;
	s->vus[k++].u.i = AIOP_MSG_F_COPY;
	if (r->val_len >= 0) {
		s->vus[k].vtype = AIOP_VTYPE_VALUE;
		s->vus[k].u.mem.ptr = (r->val_addr ? (void *)r->val_addr : (void *)(arena + r->val_off));
		s->vus[k++].u.mem.size = (size_t)r->val_len;
	}
	if (r->key_len >= 0) {
		s->vus[k].vtype = AIOP_VTYPE_KEY;
		s->vus[k].u.mem.ptr = (void *)(arena + r->key_off);
		s->vus[k++].u.mem.size = (size_t)r->key_len;
	}
	s->vus[k].vtype = AIOP_VTYPE_OPAQUE;
	s->vus[k++].u.ptr = (void *)(uintptr_t)r->opaque;
	if (r->timestamp) {
		s->vus[k].vtype = AIOP_VTYPE_TIMESTAMP;
		s->vus[k++].u.i64 = r->timestamp;
	}
	for (j = 0; j < r->hdr_count; j++) {
		const aiop_hdr_t *hd = &hdrs[r->hdr_first + j];
		s->vus[k].vtype = AIOP_VTYPE_HEADER;
		s->vus[k].u.header.name = arena + hd->name_off;
		s->vus[k].u.header.val = hd->val_len < 0 ? NULL : arena + hd->val_off;
		s->vus[k++].u.header.size = hd->val_len < 0 ? 0 : (ssize_t)hd->val_len;
	}
	return rd_kafka_produceva(h->rk, s->vus, k);
}

/* set_error records why aiop_produce stopped and destroys err (NULL: out of memory, which the caller
 * treats like a full queue: the rest is offered again). */
static void set_error(aiop_perr_t *perr, aiop_error_t *err) {
	const char *str;
	if (!err) {
		perr->code = AIOP_ERR_QUEUE_FULL;
		perr->fatal = 0;
		perr->str[0] = '\0';
		return;
	}
	str = rd_kafka_error_string(err);
	perr->code = rd_kafka_error_code(err);
	perr->fatal = rd_kafka_error_is_fatal(err);
	snprintf(perr->str, sizeof(perr->str), "%s", str ? str : "");
	rd_kafka_error_destroy(err);
}

/* The largest partition id a run is grouped by: a run naming a larger one is produced as it is. */
#define AIOP_MAX_GROUP_PARTITION 65535

/* group orders idx[0..m) (the indexes of a run's records, in their order; eff[k] is the partition of the
 * run's k-th record, and stays indexed so) so that within each
 * segment of records that have a partition, each partition's records are adjacent, in their order
 * (a stable counting sort). A record without one (-1) may land in any partition, so it stays where it
 * is and no record crosses it. librdkafka enqueues a message to the partition it enqueued the previous one
 * to at less than half the cost of a switch (BENCHMARKS.md). Returns -1 out of memory (idx is then the
 * order as it was). */
static int group(struct aiop_scratch *s, const int32_t *eff, int32_t *idx, size_t m) {
	size_t lo = 0, hi, k;
	while (lo < m) {
		int32_t maxp = -1, sum = 0, p;
		int32_t tmp[AIOP_STACK_RECS], *out = tmp;
		if (eff[lo] < 0) {
			lo++;
			continue;
		}
		for (hi = lo; hi < m && eff[hi] >= 0; hi++)
			if (eff[hi] > maxp)
				maxp = eff[hi];
		if (hi - lo < 3 || maxp > AIOP_MAX_GROUP_PARTITION) {
			lo = hi;
			continue;
		}
		if ((size_t)maxp + 1 > s->ccap) {
			int32_t *c = malloc(((size_t)maxp + 1) * sizeof(*c));
			if (!c)
				return -1;
			if (s->cnt != s->cstack)
				free(s->cnt);
			s->cnt = c;
			s->ccap = (size_t)maxp + 1;
		}
		memset(s->cnt, 0, ((size_t)maxp + 1) * sizeof(*s->cnt));
		for (k = lo; k < hi; k++)
			s->cnt[eff[k]]++;
		for (p = 0; p <= maxp; p++) { /* counts to starting positions */
			int32_t c = s->cnt[p];
			s->cnt[p] = sum;
			sum += c;
		}
		if (hi - lo > AIOP_STACK_RECS && !(out = malloc((hi - lo) * sizeof(*out))))
			return -1;
		for (k = lo; k < hi; k++)
			out[s->cnt[eff[k]]++] = idx[k];
		memcpy(&idx[lo], out, (hi - lo) * sizeof(*out));
		if (out != tmp)
			free(out);
		lo = hi;
	}
	return 0;
}

/* produce_run enqueues the records recs[lo..hi), all of one topic, and fills order[lo..hi). A keyed
 * record without a partition is partitioned by librdkafka's own partitioner function (the one
 * aiop_open installed wrapped), with the partition count librdkafka gave it for the run's first such
 * record, which goes through librdkafka's partitioner itself: so each lands where librdkafka would put
 * it, and the run can be grouped by partition. Records up to that first one are produced as they are.
 * While librdkafka does not know the topic's partitions, its partitioner is not called and the run goes
 * as it is. Returns 0, or -1 when it stopped (perr says why; *done counts what it enqueued). */
static int produce_run(aiop_h *h, struct aiop_scratch *s, const aiop_rec_t *recs, size_t lo, size_t hi,
                       const char *arena, const aiop_hdr_t *hdrs, int32_t *order, int32_t *parts, size_t *done,
                       aiop_perr_t *perr) {
	size_t first = hi, k, m, t;
	int32_t cnt = -1;
	int oom = 0;
	aiop_error_t *err;

	if (h->part != AIOP_PART_NONE)
		for (k = lo; k < hi; k++)
			if (recs[k].partition < 0 && recs[k].key_len > 0) {
				first = k;
				break;
			}
	if (first < hi) {
		for (k = lo; k <= first; k++) {
			if (k == first)
				aiop_seen_cnt = aiop_seen_part = -1;
			err = produce_rec(h, s, &recs[k], recs[k].partition, arena, hdrs, &oom);
			if (err || oom) {
				set_error(perr, err);
				return -1;
			}
			parts[k] = k == first ? aiop_seen_part : recs[k].partition;
			(*done)++;
		}
		cnt = aiop_seen_cnt;
		lo = first + 1;
	}
	m = hi - lo;
	if (m == 0)
		return 0;
	if (scratch_recs(s, m) != 0) {
		set_error(perr, NULL);
		return -1;
	}
	for (k = 0; k < m; k++) {
		const aiop_rec_t *r = &recs[lo + k];
		int32_t p = r->partition;
		if (p < 0 && cnt > 0 && r->key_len > 0) {
			p = aiop_builtin[h->part](NULL, arena + r->key_off, (size_t)r->key_len, cnt, NULL, NULL);
			perr->partitioned++;
		}
		s->eff[k] = p;
		s->idx[k] = (int32_t)(lo + k);
	}
	if (group(s, s->eff, s->idx, m) != 0) {
		set_error(perr, NULL);
		return -1;
	}
	for (t = 0; t < m; t++) {
		size_t i = (size_t)s->idx[t];
		order[lo + t] = (int32_t)i;
		parts[i] = s->eff[i - lo];
		err = produce_rec(h, s, &recs[i], s->eff[i - lo], arena, hdrs, &oom);
		if (err || oom) {
			/* order[lo+t+1..hi) still to fill: the grouped order of the rest */
			for (t++; t < m; t++)
				order[lo + t] = s->idx[t];
			set_error(perr, err);
			return -1;
		}
		(*done)++;
	}
	return 0;
}

size_t aiop_produce(aiop_h *h, const aiop_rec_t *recs, size_t n, const char *arena, const aiop_hdr_t *hdrs,
                    int32_t *order, int32_t *parts, aiop_perr_t *perr) {
	struct aiop_scratch s;
	size_t i = 0, j, done = 0;

	s.vus = s.vstack;
	s.vcap = AIOP_STACK_VUS;
	s.eff = s.estack;
	s.idx = s.istack;
	s.rcap = AIOP_STACK_RECS;
	s.cnt = s.cstack;
	s.ccap = AIOP_STACK_RECS;
	perr->code = 0;
	perr->fatal = 0;
	perr->partitioned = 0;
	for (j = 0; j < n; j++) {
		order[j] = (int32_t)j;
		parts[j] = -1;
	}
	while (i < n) {
		for (j = i + 1; j < n && recs[j].rkt == recs[i].rkt; j++)
			;
		if (produce_run(h, &s, recs, i, j, arena, hdrs, order, parts, &done, perr) != 0)
			break;
		i = j;
	}
	scratch_free(&s);
	return done;
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

int aiop_metadata_origin(aiop_h *h, int timeout_ms, int32_t *origin) {
	const aiop_metadata_t *md = NULL;
	int err = rd_kafka_metadata(h->rk, 0, NULL, &md, timeout_ms);
	*origin = -1;
	if (md) {
		*origin = md->orig_broker_id;
		rd_kafka_metadata_destroy(md);
	}
	return err;
}

int aiop_topic_leaders(aiop_h *h, aiop_topic_t *rkt, int timeout_ms, int32_t *leaders, int cap, int32_t *cnt) {
	const aiop_metadata_t *md = NULL;
	int err = rd_kafka_metadata(h->rk, 0, rkt, &md, timeout_ms), i;
	*cnt = -1;
	if (err)
		return err;
	if (md->topic_cnt < 1) {
		rd_kafka_metadata_destroy(md);
		return AIOP_ERR_UNKNOWN_TOPIC;
	}
	{
		const aiop_md_topic_t *t = &((const aiop_md_topic_t *)md->topics)[0];
		err = t->err;
		if (!err) {
			*cnt = t->partition_cnt;
			for (i = 0; i < cap; i++)
				leaders[i] = -1;
			for (i = 0; i < t->partition_cnt; i++)
				if (t->partitions[i].id >= 0 && t->partitions[i].id < cap)
					leaders[t->partitions[i].id] = t->partitions[i].err ? -1 : t->partitions[i].leader;
		}
	}
	rd_kafka_metadata_destroy(md);
	return err;
}

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
