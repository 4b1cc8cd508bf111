/* rkexp.c - librdkafka engine experiments against a real broker: what K handles, produce_batch,
 * no-copy values and librdkafka settings are worth, measured in plain C over the same static
 * librdkafka that confluent-kafka-go bundles. Not part of the library; see bench/rkexp/README.md.
 *
 * Every message goes to an explicit partition, round-robin over P partitions (as keyed messages
 * would spread); with K handles, partition p belongs to handle p % K (each handle its own idempotent
 * producer). One producer thread per handle (-T) or one for all; one drain thread per handle. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rdkafka.h"

#define MAXK 8
#define MAXP 64
#define MAXX 32

static const char *bootstrap, *topic = "rkexp", *codec = "none";
static long long count = 1000000;
static int size = 100, K = 1, P = 6, mode_batch = 0, copy = 1, threads_per_handle = 0, chunk = 1000;
static const char *xk[MAXX], *xv[MAXX];
static int nx;
static char *payloads;
static int nkeys = 0; /* -K N: message i has key i % N (8 bytes); explicit partitions are then the key's
                       * consistent partition (crc32 % P, librdkafka's consistent_random), not i % P */
static char *keys;
static int group = 0; /* -g: produceva per message, but each chunk grouped by partition (stable) */
static int ua = 0; /* -U: partition UA (the partitioner picks; sticky for these keyless messages) */
static int npay = 1; /* distinct values, cycled; 1 = one value for all messages, as bench/ does */

typedef struct {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *q;
	atomic_llong delivered, failed;
	atomic_int stop;
	pthread_t drainer, producer;
	int idx;
} handle_t;

static handle_t H[MAXK];

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *drain(void *arg) {
	handle_t *h = arg;
	static __thread const rd_kafka_message_t *msgs[4096];
	while (!atomic_load(&h->stop)) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(h->q, 100);
		if (!ev)
			continue;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DR) {
			size_t n, i;
			long long d = 0, f = 0;
			while ((n = rd_kafka_event_message_array(ev, msgs, 4096)) > 0)
				for (i = 0; i < n; i++) {
					if (msgs[i]->err) {
						if (f == 0)
							fprintf(stderr, "rkexp: DR error: %s\n", rd_kafka_err2str(msgs[i]->err));
						f++;
					} else
						d++;
				}
			atomic_fetch_add(&h->delivered, d);
			atomic_fetch_add(&h->failed, f);
		} else if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_ERROR) {
			fprintf(stderr, "rkexp: error: %s\n", rd_kafka_event_error_string(ev));
		}
		rd_kafka_event_destroy(ev);
	}
	return NULL;
}

static void open_handle(handle_t *h, int idx) {
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int i;
#define SET(k, v)                                                                                      \
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {               \
		fprintf(stderr, "rkexp: %s=%s: %s\n", k, v, errstr);                                   \
		exit(2);                                                                               \
	}
	SET("bootstrap.servers", bootstrap);
	SET("acks", "all");
	SET("enable.idempotence", "true");
	SET("linger.ms", "5");
	SET("compression.codec", codec);
	for (i = 0; i < nx; i++)
		SET(xk[i], xv[i]);
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
	h->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!h->rk) {
		fprintf(stderr, "rkexp: new: %s\n", errstr);
		exit(2);
	}
	h->q = rd_kafka_queue_get_main(h->rk);
	h->rkt = rd_kafka_topic_new(h->rk, topic, NULL);
	h->idx = idx;
	pthread_create(&h->drainer, NULL, drain, h);
}

static void wait_delivered(long long want) {
	for (;;) {
		long long got = 0;
		int k;
		for (k = 0; k < K; k++)
			got += atomic_load(&H[k].delivered) + atomic_load(&H[k].failed);
		if (got >= want)
			return;
		usleep(200);
	}
}

static const char *key_of(long long i) { return nkeys ? keys + (size_t)(i % nkeys) * 8 : NULL; }

/* part_of is message i's explicit partition. */
static int32_t part_of(long long i) {
	if (nkeys)
		return rd_kafka_msg_partitioner_consistent(H[0].rkt, key_of(i), 8, P, NULL, NULL);
	return (int32_t)(i % P);
}

/* produce_one enqueues message i of this producer (partition p) on h, retrying while the queue is full. */
static void produce_one(handle_t *h, int32_t p, long long i) {
	char *v = payloads + (size_t)(i % npay) * size;
	for (;;) {
		rd_kafka_resp_err_t err =
		    rd_kafka_producev(h->rk, RD_KAFKA_V_RKT(h->rkt), RD_KAFKA_V_PARTITION(p),
		                      RD_KAFKA_V_KEY(key_of(i), nkeys ? 8 : 0),
		                      RD_KAFKA_V_VALUE(v, (size_t)size), RD_KAFKA_V_MSGFLAGS(copy ? RD_KAFKA_MSG_F_COPY : 0),
		                      RD_KAFKA_V_END);
		if (!err)
			return;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			fprintf(stderr, "rkexp: produce: %s\n", rd_kafka_err2str(err));
			exit(3);
		}
		usleep(500);
	}
}

/* run_range produces messages [0, n) of the partitions owned by the handles in [k0, k1): message i
 * goes to partition i % P; only the ones whose handle is in range are produced here. */
typedef struct {
	int k0, k1;
	long long n;
} job_t;

static void *run_range(void *arg) {
	job_t *j = arg;
	long long i;
	if (!mode_batch && group) {
		for (i = 0; i < j->n; i += chunk) {
			long long e = i + chunk < j->n ? i + chunk : j->n, m;
			int32_t p;
			for (p = 0; p < P; p++) {
				int k = p % K;
				if (k < j->k0 || k >= j->k1)
					continue;
				for (m = i; m < e; m++)
					if (part_of(m) == p)
						produce_one(&H[k], p, m);
			}
		}
		return NULL;
	}
	if (!mode_batch) {
		for (i = 0; i < j->n; i++) {
			int32_t p = ua ? RD_KAFKA_PARTITION_UA : part_of(i);
			if (ua) {
				produce_one(&H[0], p, i);
				continue;
			}
			int k = p % K;
			if (k < j->k0 || k >= j->k1)
				continue;
			produce_one(&H[k], p, i);
		}
		return NULL;
	}
	/* produce_batch: take chunk messages at a time, group them per partition, one call per partition. */
	{
		rd_kafka_message_t *pm[MAXP];
		int pn[MAXP], p;
		for (p = 0; p < P; p++)
			pm[p] = calloc((size_t)chunk, sizeof(rd_kafka_message_t));
		for (i = 0; i < j->n; i += chunk) {
			long long e = i + chunk < j->n ? i + chunk : j->n, m;
			memset(pn, 0, sizeof(pn));
			for (m = i; m < e; m++) {
				int32_t pp = ua ? 0 : part_of(m);
				int k = pp % K;
				rd_kafka_message_t *msg;
				if (k < j->k0 || k >= j->k1)
					continue;
				msg = &pm[pp][pn[pp]++];
				memset(msg, 0, sizeof(*msg));
				msg->payload = payloads + (size_t)(m % npay) * size;
				msg->len = (size_t)size;
				msg->key = (void *)key_of(m);
				msg->key_len = nkeys ? 8 : 0;
			}
			for (p = 0; p < P; p++) {
				int done = 0;
				handle_t *h = &H[p % K];
				while (done < pn[p]) {
					int got = rd_kafka_produce_batch(h->rkt, ua ? RD_KAFKA_PARTITION_UA : p, copy ? RD_KAFKA_MSG_F_COPY : 0, pm[p] + done,
					                                 pn[p] - done);
					/* the accepted ones are a prefix? no: each message's err says. Re-pack failures. */
					int q, w = 0;
					(void)got;
					for (q = done; q < pn[p]; q++) {
						if (pm[p][q].err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
							pm[p][done + w] = pm[p][q];
							pm[p][done + w].err = 0;
							w++;
						} else if (pm[p][q].err) {
							fprintf(stderr, "rkexp: produce_batch: %s\n", rd_kafka_err2str(pm[p][q].err));
							exit(3);
						}
					}
					pn[p] = done + w;
					if (w)
						usleep(500);
				}
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	int c, k, i;
	long long total = 0, failed = 0;
	int64_t t0, el;
	struct rusage ru0, ru1;
	double cpu;
	while ((c = getopt(argc, argv, "b:t:n:s:z:k:P:BCTUgK:c:r:X:")) != -1) {
		switch (c) {
		case 'b': bootstrap = optarg; break;
		case 't': topic = optarg; break;
		case 'n': count = atoll(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'z': codec = optarg; break;
		case 'k': K = atoi(optarg); break;
		case 'P': P = atoi(optarg); break;
		case 'B': mode_batch = 1; break;
		case 'C': copy = 0; break;
		case 'T': threads_per_handle = 1; break;
		case 'c': chunk = atoi(optarg); break;
		case 'U': ua = 1; break;
		case 'g': group = 1; break;
		case 'K': nkeys = atoi(optarg); break;
		case 'r': npay = atoi(optarg); break;
		case 'X': {
			char *eq = strchr(optarg, '=');
			if (!eq || nx == MAXX) {
				fprintf(stderr, "rkexp: -X key=value\n");
				return 2;
			}
			*eq = 0;
			xk[nx] = optarg;
			xv[nx++] = eq + 1;
			break;
		}
		default:
			fprintf(stderr, "usage: rkexp -b bootstrap [-t topic] [-n count] [-s size] [-z codec] [-k handles] [-P partitions] [-B produce_batch] [-U partition UA] [-g group chunk by partition] [-K keys] [-C no copy] [-T thread per handle] [-c chunk] [-r distinct values] [-X k=v]...\n");
			return 2;
		}
	}
	if (!bootstrap || (ua && K != 1) || npay < 1 || K < 1 || K > MAXK || P < 1 || P > MAXP) {
		fprintf(stderr, "rkexp: bad arguments\n");
		return 2;
	}
	payloads = malloc((size_t)npay * size);
	{
		uint64_t x = 88172645463325252ULL;
		size_t n;
		for (n = 0; n < (size_t)npay * size; n++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			payloads[n] = "abcdefghijklmnop"[x & 15];
		}
	}
	if (nkeys) {
		keys = malloc((size_t)nkeys * 8);
		for (i = 0; i < nkeys; i++) {
			char tmp[16];
			snprintf(tmp, sizeof(tmp), "k%07d", i % 10000000);
			memcpy(keys + (size_t)i * 8, tmp, 8);
		}
	}
	for (k = 0; k < K; k++)
		open_handle(&H[k], k);
	/* warm-up: one message per partition, all delivered, before the clock starts */
	for (i = 0; i < P; i++)
		produce_one(&H[i % K], i, i);
	wait_delivered(P);
	for (k = 0; k < K; k++)
		atomic_store(&H[k].delivered, 0), atomic_store(&H[k].failed, 0);

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	if (threads_per_handle && K > 1) {
		job_t jobs[MAXK];
		for (k = 0; k < K; k++) {
			jobs[k].k0 = k, jobs[k].k1 = k + 1, jobs[k].n = count;
			pthread_create(&H[k].producer, NULL, run_range, &jobs[k]);
		}
		for (k = 0; k < K; k++)
			pthread_join(H[k].producer, NULL);
	} else {
		job_t j = {0, K, count};
		run_range(&j);
	}
	wait_delivered(count);
	el = now_ns() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
	      (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	for (k = 0; k < K; k++) {
		total += atomic_load(&H[k].delivered);
		failed += atomic_load(&H[k].failed);
	}
	printf("msgs/s=%.0f elapsed_s=%.3f cpu_s=%.3f cpu_us_per_msg=%.3f delivered=%lld failed=%lld\n",
	       (double)count / ((double)el / 1e9), (double)el / 1e9, cpu, cpu * 1e6 / (double)count, total, failed);
	for (k = 0; k < K; k++) {
		atomic_store(&H[k].stop, 1);
		pthread_join(H[k].drainer, NULL);
		rd_kafka_topic_destroy(H[k].rkt);
		rd_kafka_queue_destroy(H[k].q);
		rd_kafka_destroy(H[k].rk);
	}
	return failed ? 1 : 0;
}
