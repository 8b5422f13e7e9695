/*
 * Peer for the part-PUT benchmark: libcurl PUTting one part from a memory buffer or from a file, timed
 * in-process exactly as put_part_bench.c times fio_put_part, so the two are compared like for like.
 *
 *   curl_put_bench URL FILE memory|file [CAFILE]
 *
 * memory: FILE is read into a buffer first (not timed), then PUT from the buffer by a read callback.
 * file:   FILE is opened and PUT by libcurl's default fread callback (what `curl -T FILE` does).
 * Prints one JSON line: seconds (wall, the PUT only), cpu_user/cpu_sys (the PUT only, all threads),
 * http status, bytes, threads seen during the PUT.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct mem { const unsigned char *p; size_t len, off; };

static size_t read_mem(char *dst, size_t size, size_t n, void *ud) {
    struct mem *m = ud;
    size_t want = size * n, left = m->len - m->off;
    if (want > left) want = left;
    memcpy(dst, m->p + m->off, want);
    m->off += want;
    return want;
}

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int max_threads;
static double last_sample;
static double now(void);
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)ud; (void)a; (void)b; (void)c; (void)d;
    double t = now();
    if (t - last_sample < 0.05) return 0; /* sample the thread count at most every 50 ms */
    last_sample = t;
    int n = count_threads();
    if (n > max_threads) max_threads = n;
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s URL FILE memory|file [CAFILE]\n", argv[0]); return 2; }
    const char *url = argv[1], *path = argv[2], *mode = argv[3], *ca = argc > 4 ? argv[4] : NULL;
    struct stat st;
    if (stat(path, &st) != 0) { perror("stat"); return 1; }
    size_t len = (size_t)st.st_size;
    struct mem m = {0};
    FILE *f = NULL;
    unsigned char *buf = NULL;
    if (!strcmp(mode, "memory")) {
        buf = malloc(len ? len : 1);
        int fd = open(path, O_RDONLY);
        size_t got = 0;
        while (got < len) { ssize_t r = read(fd, buf + got, len - got); if (r <= 0) { perror("read"); return 1; } got += (size_t)r; }
        close(fd);
        m.p = buf; m.len = len;
    } else {
        f = fopen(path, "rb");
        if (!f) { perror("fopen"); return 1; }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    if (buf) { curl_easy_setopt(c, CURLOPT_READFUNCTION, read_mem); curl_easy_setopt(c, CURLOPT_READDATA, &m); }
    else curl_easy_setopt(c, CURLOPT_READDATA, f);
    if (ca) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now();
    CURLcode rc = curl_easy_perform(c);
    double t1 = now();
    getrusage(RUSAGE_SELF, &r1);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    printf("{\"seconds\": %.6f, \"cpu_user\": %.6f, \"cpu_sys\": %.6f, \"status\": %ld, \"curl_code\": %d, "
           "\"bytes\": %zu, \"threads_during\": %d, \"curl_version\": \"%s\"}\n",
           t1 - t0, tv(r1.ru_utime) - tv(r0.ru_utime), tv(r1.ru_stime) - tv(r0.ru_stime), code, (int)rc, len,
           max_threads, curl_version_info(CURLVERSION_NOW)->version);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    fclose(devnull);
    if (f) fclose(f);
    free(buf);
    return rc == CURLE_OK && code >= 200 && code < 300 ? 0 : 1;
}
