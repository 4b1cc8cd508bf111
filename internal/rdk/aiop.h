/*
 * aiop.h - the few librdkafka declarations the rdk package needs, written here instead of including
 * rdkafka.h (which is not on the include path), and the C helper's own API. Every symbol this package
 * defines is prefixed aiop_: confluent-kafka-go's glue defines global C names of its own.
 *
 * The layouts below are librdkafka's public ABI (rdkafka.h, major version 2); aiop_check_abi and the
 * _Static_asserts check their sizes.
 */
#ifndef AIOP_H
#define AIOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opaque librdkafka handles. */
typedef struct aiop_rk_s aiop_rk_t;       /* rd_kafka_t */
typedef struct aiop_conf_s aiop_conf_t;   /* rd_kafka_conf_t */
typedef struct aiop_queue_s aiop_queue_t; /* rd_kafka_queue_t */
typedef struct aiop_event_s aiop_event_t; /* rd_kafka_event_t */
typedef struct aiop_error_s aiop_error_t; /* rd_kafka_error_t */
typedef struct aiop_topic_s aiop_topic_t; /* rd_kafka_topic_t */

/* rd_kafka_message_t */
typedef struct {
	int err;
	aiop_topic_t *rkt;
	int32_t partition;
	void *payload;
	size_t len;
	void *key;
	size_t key_len;
	int64_t offset;
	void *_private;
} aiop_message_t;

/* rd_kafka_vu_t */
typedef struct {
	int vtype;
	union {
		const char *cstr;
		aiop_topic_t *rkt;
		int i;
		int32_t i32;
		int64_t i64;
		struct {
			void *ptr;
			size_t size;
		} mem;
		struct {
			const char *name;
			const void *val;
			ssize_t size;
		} header;
		void *ptr;
		char _pad[64];
	} u;
} aiop_vu_t;

#define AIOP_MESSAGE_SIZE 72
#define AIOP_VU_SIZE 72
_Static_assert(sizeof(aiop_message_t) == AIOP_MESSAGE_SIZE || sizeof(void *) != 8, "rd_kafka_message_t layout");
_Static_assert(sizeof(aiop_vu_t) == AIOP_VU_SIZE || sizeof(void *) != 8, "rd_kafka_vu_t layout");

/* rd_kafka_vtype_t */
enum {
	AIOP_VTYPE_END = 0,
	AIOP_VTYPE_TOPIC = 1,
	AIOP_VTYPE_RKT = 2,
	AIOP_VTYPE_PARTITION = 3,
	AIOP_VTYPE_VALUE = 4,
	AIOP_VTYPE_KEY = 5,
	AIOP_VTYPE_OPAQUE = 6,
	AIOP_VTYPE_MSGFLAGS = 7,
	AIOP_VTYPE_TIMESTAMP = 8,
	AIOP_VTYPE_HEADER = 9,
};

#define AIOP_PRODUCER 0
#define AIOP_MSG_F_COPY 0x2
#define AIOP_EVENT_DR 0x1
#define AIOP_EVENT_LOG 0x4
#define AIOP_EVENT_ERROR 0x8
#define AIOP_EVENT_STATS 0x40
#define AIOP_EVENT_OAUTHBEARER_TOKEN_REFRESH 0x100
#define AIOP_ERR_QUEUE_FULL (-184)
#define AIOP_ERR_FATAL (-150)
#define AIOP_ERR_UNKNOWN_TOPIC 3
#define AIOP_CONF_OK 0

/* The librdkafka functions used (librdkafka's own symbols, from the static archive that
 * confluent-kafka-go links). */
int rd_kafka_version(void);
aiop_conf_t *rd_kafka_conf_new(void);
int rd_kafka_conf_set(aiop_conf_t *conf, const char *name, const char *value, char *errstr, size_t errstr_size);
void rd_kafka_conf_destroy(aiop_conf_t *conf);
void rd_kafka_conf_set_events(aiop_conf_t *conf, int events);
aiop_rk_t *rd_kafka_new(int type, aiop_conf_t *conf, char *errstr, size_t errstr_size);
void rd_kafka_destroy(aiop_rk_t *rk);
const char *rd_kafka_name(const aiop_rk_t *rk);
aiop_queue_t *rd_kafka_queue_get_main(aiop_rk_t *rk);
void rd_kafka_queue_destroy(aiop_queue_t *rkqu);
aiop_event_t *rd_kafka_queue_poll(aiop_queue_t *rkqu, int timeout_ms);
void rd_kafka_queue_yield(aiop_queue_t *rkqu);
size_t rd_kafka_queue_length(aiop_queue_t *rkqu);
int rd_kafka_set_log_queue(aiop_rk_t *rk, aiop_queue_t *rkqu);
int rd_kafka_event_type(const aiop_event_t *rkev);
size_t rd_kafka_event_message_array(aiop_event_t *rkev, const aiop_message_t **rkmessages, size_t size);
void rd_kafka_event_destroy(aiop_event_t *rkev);
int rd_kafka_event_error(aiop_event_t *rkev);
const char *rd_kafka_event_error_string(aiop_event_t *rkev);
int rd_kafka_event_error_is_fatal(aiop_event_t *rkev);
int rd_kafka_event_log(aiop_event_t *rkev, const char **fac, const char **str, int *level);
int64_t rd_kafka_message_timestamp(const aiop_message_t *rkmessage, int *tstype);
aiop_error_t *rd_kafka_produceva(aiop_rk_t *rk, const aiop_vu_t *vus, size_t cnt);
int rd_kafka_error_code(const aiop_error_t *error);
const char *rd_kafka_error_string(const aiop_error_t *error);
int rd_kafka_error_is_fatal(const aiop_error_t *error);
void rd_kafka_error_destroy(aiop_error_t *error);
int rd_kafka_purge(aiop_rk_t *rk, int purge_flags);
int rd_kafka_fatal_error(aiop_rk_t *rk, char *errstr, size_t errstr_size);
int rd_kafka_test_fatal_error(aiop_rk_t *rk, int err, const char *reason);
aiop_topic_t *rd_kafka_topic_new(aiop_rk_t *rk, const char *topic, void *conf);
void rd_kafka_topic_destroy(aiop_topic_t *rkt);
int rd_kafka_outq_len(aiop_rk_t *rk);
int rd_kafka_message_status(const aiop_message_t *rkmessage);
int rd_kafka_error_is_retriable(const aiop_error_t *error);
int rd_kafka_error_txn_requires_abort(const aiop_error_t *error);
aiop_error_t *rd_kafka_init_transactions(aiop_rk_t *rk, int timeout_ms);
aiop_error_t *rd_kafka_begin_transaction(aiop_rk_t *rk);
aiop_error_t *rd_kafka_commit_transaction(aiop_rk_t *rk, int timeout_ms);
aiop_error_t *rd_kafka_abort_transaction(aiop_rk_t *rk, int timeout_ms);
typedef struct aiop_tplist_s aiop_tplist_t; /* rd_kafka_topic_partition_list_t */
typedef struct aiop_tpar_s aiop_tpar_t;     /* rd_kafka_topic_partition_t */
typedef struct aiop_cgmd_s aiop_cgmd_t;     /* rd_kafka_consumer_group_metadata_t */
aiop_tplist_t *rd_kafka_topic_partition_list_new(int size);
void rd_kafka_topic_partition_list_destroy(aiop_tplist_t *list);
aiop_tpar_t *rd_kafka_topic_partition_list_add(aiop_tplist_t *list, const char *topic, int32_t partition);
int rd_kafka_topic_partition_list_set_offset(aiop_tplist_t *list, const char *topic, int32_t partition, int64_t offset);
void rd_kafka_topic_partition_set_leader_epoch(aiop_tpar_t *rktpar, int32_t leader_epoch);
aiop_error_t *rd_kafka_consumer_group_metadata_read(aiop_cgmd_t **cgmdp, const void *buffer, size_t size);
void rd_kafka_consumer_group_metadata_destroy(aiop_cgmd_t *cgmd);
aiop_error_t *rd_kafka_send_offsets_to_transaction(aiop_rk_t *rk, const aiop_tplist_t *offsets, const aiop_cgmd_t *cgmetadata, int timeout_ms);
int rd_kafka_flush(aiop_rk_t *rk, int timeout_ms);
/* The start of rd_kafka_metadata_t, as far as aiop_metadata_origin reads it. */
typedef struct {
	int broker_cnt;
	void *brokers;
	int topic_cnt;
	void *topics;
	int32_t orig_broker_id;
	char *orig_broker_name;
} aiop_metadata_t;
_Static_assert(offsetof(aiop_metadata_t, orig_broker_id) == 32 || sizeof(void *) != 8, "rd_kafka_metadata_t layout");
/* rd_kafka_metadata_partition_t and rd_kafka_metadata_topic_t. */
typedef struct {
	int32_t id;
	int err;
	int32_t leader;
	int replica_cnt;
	int32_t *replicas;
	int isr_cnt;
	int32_t *isrs;
} aiop_md_partition_t;
typedef struct {
	char *topic;
	int partition_cnt;
	aiop_md_partition_t *partitions;
	int err;
} aiop_md_topic_t;
_Static_assert(sizeof(aiop_md_partition_t) == 40 || sizeof(void *) != 8, "rd_kafka_metadata_partition_t layout");
_Static_assert(sizeof(aiop_md_topic_t) == 32 || sizeof(void *) != 8, "rd_kafka_metadata_topic_t layout");
int rd_kafka_metadata(aiop_rk_t *rk, int all_topics, aiop_topic_t *only_rkt, const aiop_metadata_t **metadatap,
                      int timeout_ms);
void rd_kafka_metadata_destroy(const aiop_metadata_t *metadata);
const char *rd_kafka_event_config_string(aiop_event_t *rkev);
const char *rd_kafka_event_stats(aiop_event_t *rkev);
int rd_kafka_oauthbearer_set_token(aiop_rk_t *rk, const char *token_value, int64_t md_lifetime_ms,
                                   const char *md_principal_name, const char **extensions, size_t extension_size,
                                   char *errstr, size_t errstr_size);
int rd_kafka_oauthbearer_set_token_failure(aiop_rk_t *rk, const char *errstr);
aiop_error_t *rd_kafka_sasl_set_credentials(aiop_rk_t *rk, const char *username, const char *password);
typedef struct aiop_tconf_s aiop_tconf_t; /* rd_kafka_topic_conf_t */
typedef int32_t(aiop_partitioner_t)(const aiop_topic_t *rkt, const void *key, size_t keylen, int32_t partition_cnt,
                                     void *rkt_opaque, void *msg_opaque);
aiop_tconf_t *rd_kafka_conf_get_default_topic_conf(aiop_conf_t *conf);
aiop_tconf_t *rd_kafka_topic_conf_new(void);
void rd_kafka_conf_set_default_topic_conf(aiop_conf_t *conf, aiop_tconf_t *tconf);
void rd_kafka_topic_conf_set_partitioner_cb(aiop_tconf_t *topic_conf, aiop_partitioner_t *partitioner);
aiop_partitioner_t rd_kafka_msg_partitioner_random;
aiop_partitioner_t rd_kafka_msg_partitioner_consistent;
aiop_partitioner_t rd_kafka_msg_partitioner_consistent_random;
aiop_partitioner_t rd_kafka_msg_partitioner_murmur2;
aiop_partitioner_t rd_kafka_msg_partitioner_murmur2_random;
aiop_partitioner_t rd_kafka_msg_partitioner_fnv1a;
aiop_partitioner_t rd_kafka_msg_partitioner_fnv1a_random;

/* ---- The helper's own API. ---- */

/* One message to produce: its topic handle, and offsets into the call's byte arena, or for a large value
 * the address of the caller's own (pinned) bytes instead. Integers, not pointers: the record stays
 * pointer-free, so cgo need not check it and Go's GC need not scan it; the topic handle is librdkafka's
 * (C memory) and the pin keeps the bytes in place. A length of -1 is null. */
typedef struct {
	uint64_t rkt; /* aiop_topic_t *, from rd_kafka_topic_new */
	int64_t key_off;
	int64_t val_off;
	uintptr_t val_addr; /* non-zero: the value is at this address, not in the arena */
	int64_t key_len;
	int64_t val_len;
	int64_t timestamp; /* ms since the epoch; 0: librdkafka's now */
	uint64_t opaque;   /* slot index */
	int32_t partition; /* -1: any */
	int32_t hdr_first; /* index into the header array */
	int32_t hdr_count;
	int32_t _pad;
} aiop_rec_t;
/* One header: a NUL-terminated name and a value in the arena. */
typedef struct {
	int64_t name_off;
	int64_t val_off;
	int64_t val_len; /* -1: null */
} aiop_hdr_t;

/* Why aiop_produce stopped before the end. */
typedef struct {
	int32_t code; /* 0: all enqueued */
	int32_t fatal;
	int32_t partitioned; /* keyed messages without a partition that aiop_produce partitioned itself */
	char str[256];
} aiop_perr_t;

/* Partitioners aiop_open can observe (AIOP_PART_NONE: none): librdkafka's built-in partitioner of that
 * name, wrapped so that aiop_produce learns the partition count it was called with. */
enum {
	AIOP_PART_NONE = 0,
	AIOP_PART_CONSISTENT_RANDOM = 1,
	AIOP_PART_MURMUR2_RANDOM = 2,
	AIOP_PART_FNV1A_RANDOM = 3,
};

/* aiop_partition runs librdkafka's built-in partitioner kind (AIOP_PART_*) on a non-empty key. */
int32_t aiop_partition(int kind, const void *key, size_t keylen, int32_t partition_cnt);

/* One delivery report. */
typedef struct {
	uint64_t opaque;
	int64_t offset;
	int64_t timestamp; /* ms, -1 if not available */
	int32_t err;
	int32_t partition;
	int32_t tstype; /* 0: not available, 1: CreateTime, 2: LogAppendTime */
	int32_t status; /* rd_kafka_msg_status_t: 0 not persisted, 1 possibly persisted, 2 persisted */
} aiop_dr_t;

/* A non-delivery event: an error, a log line, a token refresh request or a statistics report (str: the
 * JSON). The strings are owned by the event, valid until aiop_release_event. */
typedef struct {
	int32_t type; /* AIOP_EVENT_ERROR, _LOG, _OAUTHBEARER_TOKEN_REFRESH or _STATS; 0: none */
	int32_t code;
	int32_t fatal;
	int32_t level;
	const char *fac;
	const char *str;
	char fatal_str[512];
} aiop_ev_t;

typedef struct aiop_h aiop_h;

int aiop_check_abi(void);

void aiop_close(aiop_h *h);
void aiop_wake(aiop_h *h);
/* aiop_produce enqueues recs (runs of one topic each) with rd_kafka_produceva, each topic run's records
 * grouped by partition (see aiop.c), and returns how many it enqueued. order[k] is the index in recs of the
 * k-th record in the order it enqueued them (or, past the returned count, would have): the caller offers
 * the rest again in that order. parts[i] is the partition record i (in recs' order) was produced to, if
 * aiop_produce knows it (it was given, or a partitioner placed it), else -1 (librdkafka's sticky
 * partitioner decides later). It stops at the first record librdkafka refuses (perr says why). */
size_t aiop_produce(aiop_h *h, const aiop_rec_t *recs, size_t n, const char *arena, const aiop_hdr_t *hdrs,
                    int32_t *order, int32_t *parts, aiop_perr_t *perr);
/* aiop_topic_leaders requests rkt's metadata (rd_kafka_metadata, up to timeout_ms) and sets *cnt to its
 * partition count and leaders[id] to partition id's leader (-1: none) for id < cap. It returns librdkafka's
 * error code, or the topic's own error from the response. */
int aiop_topic_leaders(aiop_h *h, aiop_topic_t *rkt, int timeout_ms, int32_t *leaders, int cap, int32_t *cnt);
aiop_topic_t *aiop_topic(aiop_h *h, const char *name);
/* aiop_metadata_origin requests metadata for the locally known topics (rd_kafka_metadata, waiting up to
 * timeout_ms for a broker to be up and for its answer) and sets *origin to the node id of the broker that
 * answered (-1 for a bootstrap broker). It returns librdkafka's error code. */
int aiop_metadata_origin(aiop_h *h, int timeout_ms, int32_t *origin);
size_t aiop_poll(aiop_h *h, int timeout_ms, aiop_dr_t *out, size_t cap, aiop_ev_t *ev);
void aiop_release_event(aiop_h *h);
int aiop_drained(aiop_h *h);
int aiop_purge(aiop_h *h, int flags);
int aiop_test_fatal(aiop_h *h, int code, const char *reason);
int aiop_fatal_error(aiop_h *h, char *errstr, size_t errstr_size);
const char *aiop_name(aiop_h *h);
int aiop_outq_len(aiop_h *h);
int aiop_flush(aiop_h *h, int timeout_ms);

/* A transactional call's error: code 0 for none. */
typedef struct {
	int32_t code;
	int32_t fatal;
	int32_t retriable;
	int32_t abortable; /* rd_kafka_error_txn_requires_abort */
	char str[512];
} aiop_txnerr_t;

#define AIOP_TXN_INIT 1
#define AIOP_TXN_BEGIN 2
#define AIOP_TXN_COMMIT 3
#define AIOP_TXN_ABORT 4

/* One offset for aiop_send_offsets: the topic is a NUL-terminated string in the call's arena. */
typedef struct {
	int64_t topic_off;
	int64_t offset;
	int32_t partition;
	int32_t leader_epoch; /* -1: unknown */
} aiop_offset_t;

void aiop_txn(aiop_h *h, int op, int timeout_ms, aiop_txnerr_t *out);
void aiop_send_offsets(aiop_h *h, const aiop_offset_t *offs, size_t n, const char *arena, const void *cgmd,
                       size_t cgmd_size, int timeout_ms, aiop_txnerr_t *out);
/* aiop_check_setting sets name=value on a scratch configuration: 0 if librdkafka takes it, else its
 * error in errstr. */
int aiop_check_setting(const char *name, const char *value, char *errstr, size_t errstr_size);

/* aiop_open creates the producer; with token_refresh, OAUTHBEARER token refresh requests come through
 * aiop_poll as events (the application supplies the tokens), and with stats, the statistics reports
 * (every statistics.interval.ms, if set). partitioner (AIOP_PART_*) is the built-in partitioner the
 * configuration names, which aiop_open installs wrapped (see aiop_partition). */
aiop_h *aiop_open(aiop_conf_t *conf, int token_refresh, int stats, int partitioner, char *errstr, size_t errstr_size);
int aiop_set_token(aiop_h *h, const char *value, int64_t lifetime_ms, const char *principal, const char **exts,
                   size_t n, char *errstr, size_t errstr_size);
int aiop_set_token_failure(aiop_h *h, const char *errstr);
void aiop_set_credentials(aiop_h *h, const char *user, const char *pass, aiop_txnerr_t *out);

#endif
