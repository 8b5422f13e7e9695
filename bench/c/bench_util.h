/* Small helpers shared by the C benchmark programs: clocks, CPU time, thread counts, peak RSS. */
#ifndef FIO_BENCH_UTIL_H
#define FIO_BENCH_UTIL_H
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline double bu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bu_tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

/* CPU seconds (user, sys) of the whole process, all threads */
static inline void bu_cpu(double *user, double *sys) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *user = bu_tv(r.ru_utime);
    *sys = bu_tv(r.ru_stime);
}

static inline int bu_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* peak RSS so far in KiB (VmHWM), and current RSS (VmRSS) */
static inline long bu_status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = atol(line + kl + 1); break; }
    }
    fclose(f);
    return v;
}

/* read a whole file into a malloc'd buffer */
static inline unsigned char *bu_slurp(const char *path, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0) { perror(path); return NULL; }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n ? n : 1);
    int fd = open(path, O_RDONLY);
    if (!buf || fd < 0) { perror(path); free(buf); if (fd >= 0) close(fd); return NULL; }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) { perror("read"); free(buf); close(fd); return NULL; }
        got += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

#endif
