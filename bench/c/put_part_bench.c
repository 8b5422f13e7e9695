/*
 * The library side of the part-PUT benchmark: fio_put_part (from a buffer) or fio_put_part_fd (from a file
 * descriptor range), timed in-process exactly like curl_put_bench.c times libcurl.
 *
 *   put_part_bench URL FILE memory|fd [CAFILE]
 *
 * Prints one JSON line: seconds and CPU (user, sys; all threads) of the PUT call only, status, bytes, and
 * the most threads seen during the call (sampled by a helper thread, which is not counted).
 */
#include "bench_util.h"
#include "frameio_c2c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

static atomic_int sampling = 1;
static int max_threads;

static void *sampler(void *arg) {
    (void)arg;
    while (atomic_load(&sampling)) {
        int t = bu_threads() - 1; /* not this sampler */
        if (t > max_threads) max_threads = t;
        usleep(50000);
    }
    return NULL;
}

static void fail(const char *what, fio_status st) {
    char msg[1024] = "";
    fio_last_error_message(msg, sizeof msg);
    fprintf(stderr, "put_part_bench: %s: %s (%d): %s\n", what, fio_status_str(st), (int)st, msg);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s URL FILE memory|fd [CAFILE]\n", argv[0]); return 2; }
    const char *url = argv[1], *path = argv[2], *mode = argv[3], *ca = argc > 4 ? argv[4] : NULL;

    fio_config *cfg = fio_config_new();
    fio_status st;
    /* the PUT goes to the URL alone; the base URL and credentials only have to be valid */
    if ((st = fio_config_set_allow_http(cfg, true))) fail("allow http", st);
    if ((st = fio_config_set_base_url(cfg, "http://127.0.0.1:9"))) fail("base url", st);
    if ((st = fio_config_set_client_id(cfg, "fio-bench"))) fail("client id", st);
    if ((st = fio_config_set_client_secret(cfg, "fio-bench-secret"))) fail("client secret", st);
    if (ca) {
        size_t n = 0;
        unsigned char *pem = bu_slurp(ca, &n);
        if (!pem) return 1;
        if ((st = fio_config_set_extra_ca_pem(cfg, pem, n))) fail("extra CA", st);
        free(pem);
    }
    fio_client *client = NULL;
    if ((st = fio_client_new(cfg, &client))) fail("client", st);
    fio_config_free(cfg);

    size_t len = 0;
    unsigned char *buf = NULL;
    int fd = -1;
    if (!strcmp(mode, "memory")) {
        buf = bu_slurp(path, &len);
        if (!buf) return 1;
    } else {
        struct stat sb;
        fd = open(path, O_RDONLY);
        if (fd < 0 || fstat(fd, &sb) != 0) { perror(path); return 1; }
        len = (size_t)sb.st_size;
    }
    int threads_idle = bu_threads();
    pthread_t th;
    pthread_create(&th, NULL, sampler, NULL);
    double u0, s0, u1, s1;
    bu_cpu(&u0, &s0);
    double t0 = bu_now();
    if (buf) st = fio_put_part(client, url, buf, len, "video/quicktime", NULL, NULL);
    else st = fio_put_part_fd(client, url, fd, 0, (uint64_t)len, "video/quicktime", NULL, NULL);
    double t1 = bu_now();
    bu_cpu(&u1, &s1);
    atomic_store(&sampling, 0);
    pthread_join(th, NULL);
    if (st) fail("put", st);
    printf("{\"seconds\": %.6f, \"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"status\": %d, \"bytes\": %zu, "
           "\"threads_idle\": %d, \"threads_during\": %d, \"vmhwm_kib\": %ld}\n",
           t1 - t0, u1 - u0, s1 - s0, (int)st, len, threads_idle, max_threads, bu_status_kib("VmHWM"));
    fio_client_free(client);
    free(buf);
    if (fd >= 0) close(fd);
    return 0;
}
