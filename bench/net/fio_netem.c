/*
 * fio_netem: a userspace stand-in for `tc qdisc ... netem delay D loss P`, for kernels built without
 * sch_netem (this machine's). Packets reach it through an iptables NFQUEUE rule inside the benchmark's
 * own network namespace; each one is held for a constant delay and then accepted, or dropped with
 * probability P. Because it works on real packets, the TCP connections that cross it see the real RTT
 * and real losses (retransmits, congestion-window cuts), unlike a TCP relay that only delays a stream.
 *
 * The delay is constant, so packets leave in arrival order: a FIFO of (packet id, deadline) and one
 * batch verdict per tick is enough.
 *
 * Usage: fio_netem --queue N --delay-ms D --loss P [--seed S] [--max-seconds T]
 * Stops on SIGINT/SIGTERM or after --max-seconds (default 7200), printing counters on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define RING (1u << 17)

struct held { uint32_t id; uint64_t due_ns; };

static struct held ring[RING];
static uint32_t head, tail; /* ring[head..tail) are held */
static volatile sig_atomic_t stop;
static uint64_t delay_ns;
static double loss;
static uint64_t n_seen, n_dropped, n_overflow, n_enobufs, max_depth;
static uint64_t rng_state;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: deterministic for a given seed, good enough for a Bernoulli draw */
static double rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
    (void)msg; (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    n_seen++;
    if (loss > 0 && rnd() < loss) {
        n_dropped++;
        return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
    }
    if (tail - head >= RING) { /* cannot hold it: let it through now rather than lose track */
        n_overflow++;
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    }
    ring[tail % RING].id = id;
    ring[tail % RING].due_ns = now_ns() + delay_ns;
    tail++;
    if (tail - head > max_depth) max_depth = tail - head;
    return 0;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    int queue = 0;
    double delay_ms = 20.0, max_seconds = 7200.0;
    uint64_t seed = 0x5eed5eedull;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--queue")) queue = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay-ms")) delay_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--loss")) loss = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
        else { fprintf(stderr, "fio_netem: unknown option %s\n", argv[i]); return 2; }
    }
    delay_ns = (uint64_t)(delay_ms * 1e6);
    rng_state = seed ? seed : 1;

    struct nfq_handle *h = nfq_open();
    if (!h) { perror("fio_netem: nfq_open"); return 1; }
    nfq_unbind_pf(h, AF_INET);
    if (nfq_bind_pf(h, AF_INET) < 0) { perror("fio_netem: nfq_bind_pf"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
    if (!qh) { perror("fio_netem: nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("fio_netem: nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, RING);
    nfnl_rcvbufsiz(nfq_nfnlh(h), 16 << 20);
    int fd = nfq_fd(h);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "fio_netem: queue %d, delay %.1f ms, loss %.4f\n", queue, delay_ms, loss);

    static char buf[65536] __attribute__((aligned));
    uint64_t end = now_ns() + (uint64_t)(max_seconds * 1e9);
    while (!stop) {
        uint64_t t = now_ns();
        if (t >= end) break;
        /* release everything that is due, with one batch verdict for the newest due id */
        uint32_t last = 0; int any = 0;
        while (head != tail && ring[head % RING].due_ns <= t) { last = ring[head % RING].id; any = 1; head++; }
        if (any) nfq_set_verdict_batch(qh, last, NF_ACCEPT);

        int timeout_ms = 100;
        if (head != tail) {
            uint64_t due = ring[head % RING].due_ns;
            timeout_ms = due > t ? (int)((due - t + 999999) / 1000000) : 0;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR) { perror("fio_netem: poll"); break; }
        if (r > 0) {
            for (int k = 0; k < 256; k++) { /* drain what is ready, bounded so verdicts are not starved */
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == ENOBUFS) { n_enobufs++; continue; }
                    break;
                }
                nfq_handle_packet(h, buf, (int)n);
            }
        }
    }
    /* let everything still held through before leaving */
    if (head != tail) nfq_set_verdict_batch(qh, ring[(tail - 1) % RING].id, NF_ACCEPT);
    fprintf(stderr, "fio_netem: seen %llu dropped %llu (%.4f%%) overflow %llu enobufs %llu max_held %llu\n",
            (unsigned long long)n_seen, (unsigned long long)n_dropped,
            n_seen ? 100.0 * (double)n_dropped / (double)n_seen : 0.0,
            (unsigned long long)n_overflow, (unsigned long long)n_enobufs, (unsigned long long)max_depth);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
