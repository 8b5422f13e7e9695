/*
 * The engine side of the memory, tail-latency and concurrency benchmarks: a C program on the public C API
 * (fio_upload_*), default settings unless a flag says otherwise.
 *
 *   engine_bench file   --path P [--concurrency N] [--basic 1]
 *        complete file P with fio_upload_file: a real-time asset (parts planned by the library), or with
 *        --basic 1 a basic asset (the server's upload URLs, chunk = ceil(size / URLs))
 *   engine_bench push   --path P                        P read in 1 MiB pieces, pushed with fio_upload_write
 *   engine_bench record --path P --mbit R --seconds S --source file|push
 *        records S seconds at R Mbit/s (25 frames a second) into P, in real time, feeding the engine as it
 *        goes: `file` = fio_upload_file_grew after each frame, `push` = fio_upload_write of each frame.
 *
 * env: FIO_BENCH_API (base URL), FIO_BENCH_CLIENT_ID, FIO_BENCH_ACCESS_TOKEN, FIO_BENCH_REFRESH_TOKEN,
 *      FIO_BENCH_CA (optional PEM file)
 * Prints one JSON line; times are CLOCK_MONOTONIC seconds (t_last_byte, t_finished) so that another
 * process can compare them with its own clock readings.
 */
#include "bench_util.h"
#include "frameio_c2c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

static atomic_int sampling = 1;
static atomic_int max_threads;

static void *sampler(void *arg) {
    (void)arg;
    while (atomic_load(&sampling)) {
        int t = bu_threads() - 1; /* not this sampler */
        if (t > atomic_load(&max_threads)) atomic_store(&max_threads, t);
        usleep(20000);
    }
    return NULL;
}

static void fail(const char *what, fio_status st) {
    char msg[2048] = "";
    fio_last_error_message(msg, sizeof msg);
    fprintf(stderr, "engine_bench: %s: %s (%d): %s\n", what, fio_status_str(st), (int)st, msg);
    printf("{\"error\": \"%s: %s\", \"status\": %d}\n", what, fio_status_str(st), (int)st);
    exit(1);
}

static const char *env(const char *k, const char *dflt) {
    const char *v = getenv(k);
    return v && *v ? v : dflt;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static void fill(unsigned char *p, size_t n) { /* incompressible-looking bytes, cheaply */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        memcpy(p + i, &rng, 8);
    }
    for (; i < n; i++) p[i] = (unsigned char)(rng >> (i % 8));
}

static void sleep_until(double t) {
    double now = bu_now();
    if (t <= now) return;
    struct timespec ts;
    double target = t;
    ts.tv_sec = (time_t)target;
    ts.tv_nsec = (long)((target - (double)ts.tv_sec) * 1e9);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: see the comment at the top of engine_bench.c\n"); return 2; }
    const char *mode = argv[1], *path = NULL, *source = "file";
    unsigned concurrency = 0;
    bool basic = false;
    double mbit = 50, seconds = 60;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--path")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--concurrency")) concurrency = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mbit")) mbit = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--source")) source = argv[i + 1];
        else if (!strcmp(argv[i], "--basic")) basic = atoi(argv[i + 1]) != 0;
        else { fprintf(stderr, "engine_bench: unknown option %s\n", argv[i]); return 2; }
    }
    if (!path) { fprintf(stderr, "engine_bench: --path is required\n"); return 2; }

    fio_status st;
    fio_config *cfg = fio_config_new();
    if ((st = fio_config_set_allow_http(cfg, true))) fail("allow http", st);
    if ((st = fio_config_set_base_url(cfg, env("FIO_BENCH_API", "http://127.0.0.1:9")))) fail("base url", st);
    if ((st = fio_config_set_client_id(cfg, env("FIO_BENCH_CLIENT_ID", "fio-bench")))) fail("client id", st);
    if ((st = fio_config_set_client_secret(cfg, env("FIO_BENCH_CLIENT_SECRET", "fio-emulator-secret")))) fail("client secret", st);
    const char *ca = getenv("FIO_BENCH_CA");
    if (ca && *ca) {
        size_t n = 0;
        unsigned char *pem = bu_slurp(ca, &n);
        if (!pem) return 1;
        if ((st = fio_config_set_extra_ca_pem(cfg, pem, n))) fail("extra CA", st);
        free(pem);
    }
    fio_client *client = NULL;
    if ((st = fio_client_new(cfg, &client))) fail("client", st);
    fio_config_free(cfg);
    if ((st = fio_client_set_tokens(client, env("FIO_BENCH_ACCESS_TOKEN", ""), env("FIO_BENCH_REFRESH_TOKEN", ""), 0)))
        fail("tokens", st);

    fio_asset_params params;
    fio_asset_params_init(&params);
    params.name = "bench.mov";
    params.filetype = "video/quicktime";
    params.realtime = true;
    params.has_offset = true;
    params.offset = 0;

    fio_upload_options *opts = NULL;
    if (concurrency) {
        opts = fio_upload_options_new();
        if ((st = fio_upload_options_set_concurrency(opts, concurrency))) fail("concurrency", st);
    }

    int threads_idle = bu_threads();
    pthread_t th;
    pthread_create(&th, NULL, sampler, NULL);
    double u0, s0, u1, s1;
    bu_cpu(&u0, &s0);
    fio_progress stats;
    memset(&stats, 0, sizeof stats);
    double t0 = bu_now(), t_last = 0, t_fin = 0;
    uint64_t bytes = 0;
    long late_frames = 0;
    double max_late = 0, max_write_block = 0;
    char asset_id[128] = "";
    uint64_t cut_before_end = 0, final_size = 0;
    size_t parts_before_end = 0, final_parts = 0;

    if (!strcmp(mode, "file")) {
        struct stat sb;
        if (stat(path, &sb) != 0) { perror(path); return 1; }
        bytes = (uint64_t)sb.st_size;
        t_last = t0;
        if (basic) { params.realtime = false; params.filesize = bytes; }
        if ((st = fio_upload_file(client, &params, path, opts, &stats))) fail("fio_upload_file", st);
        t_fin = bu_now();
    } else if (!strcmp(mode, "push")) {
        fio_upload *up = NULL;
        if ((st = fio_upload_start(client, &params, NULL, opts, &up))) fail("fio_upload_start", st);
        snprintf(asset_id, sizeof asset_id, "%s", fio_upload_asset_id(up));
        int fd = open(path, O_RDONLY);
        if (fd < 0) { perror(path); return 1; }
        static unsigned char buf[1 << 20];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0) { perror("read"); return 1; }
            if (n == 0) break;
            if ((st = fio_upload_write(up, buf, (size_t)n))) fail("fio_upload_write", st);
            bytes += (uint64_t)n;
        }
        close(fd);
        t_last = bu_now();
        if ((st = fio_upload_finish(up, &stats))) fail("fio_upload_finish", st);
        t_fin = bu_now();
        fio_upload_free(up);
    } else if (!strcmp(mode, "record")) {
        const double fps = 25.0;
        size_t frame = (size_t)(mbit * 1e6 / 8 / fps);
        long frames = (long)(seconds * fps);
        unsigned char *buf = malloc(frame);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (!buf || fd < 0) { perror(path); return 1; }
        bool push = !strcmp(source, "push");
        fio_upload *up = NULL;
        if ((st = fio_upload_start(client, &params, push ? NULL : path, opts, &up))) fail("fio_upload_start", st);
        snprintf(asset_id, sizeof asset_id, "%s", fio_upload_asset_id(up));
        double start = bu_now();
        for (long i = 0; i < frames; i++) {
            double due = start + (double)(i + 1) / fps; /* frame i is complete at the end of its period */
            sleep_until(due);
            double late = bu_now() - due;
            if (late > 1.0 / fps) late_frames++;
            if (late > max_late) max_late = late;
            fill(buf, frame);
            size_t off = 0;
            while (off < frame) {
                ssize_t w = write(fd, buf + off, frame - off);
                if (w <= 0) { perror("write"); return 1; }
                off += (size_t)w;
            }
            bytes += frame;
            double tw = bu_now();
            if (push) st = fio_upload_write(up, buf, frame);
            else st = fio_upload_file_grew(up, bytes);
            if (st) fail(push ? "fio_upload_write" : "fio_upload_file_grew", st);
            double blocked = bu_now() - tw;
            if (blocked > max_write_block) max_write_block = blocked;
        }
        t_last = bu_now();
        /* where the engine had cut parts when the recording ended: what is left must go after the end */
        size_t np = fio_upload_part_count(up);
        for (size_t k = 0; k < np; k++) {
            fio_upload_part pi;
            if (fio_upload_part_info(up, k, &pi) == FIO_OK && pi.offset + pi.size > cut_before_end)
                cut_before_end = pi.offset + pi.size;
        }
        parts_before_end = np;
        close(fd);
        if ((st = fio_upload_finish(up, &stats))) fail("fio_upload_finish", st);
        final_parts = fio_upload_part_count(up);
        for (size_t k = 0; k < final_parts; k++) {
            fio_upload_part pi;
            if (fio_upload_part_info(up, k, &pi) == FIO_OK && pi.is_final) final_size = pi.size;
        }
        t_fin = bu_now();
        fio_upload_free(up);
        free(buf);
    } else {
        fprintf(stderr, "engine_bench: unknown mode %s\n", mode);
        return 2;
    }
    bu_cpu(&u1, &s1);
    atomic_store(&sampling, 0);
    pthread_join(th, NULL);
    int threads_after = bu_threads();
    printf("{\"mode\": \"%s\", \"source\": \"%s\", \"bytes\": %llu, \"seconds\": %.6f, \"t_start\": %.6f, "
           "\"t_last_byte\": %.6f, \"t_finished\": %.6f, \"threads_idle\": %d, \"threads_max\": %d, "
           "\"threads_after\": %d, \"vmhwm_kib\": %ld, \"cpu_user\": %.4f, \"cpu_sys\": %.4f, \"asset_id\": \"%s\", "
           "\"parts\": %u, \"retries\": %u, \"peak_bytes_buffered\": %llu, \"late_frames\": %ld, "
           "\"max_frame_lateness\": %.4f, \"max_feed_block\": %.4f, \"concurrency\": %u, \"basic\": %d, "
           "\"cut_before_end\": %llu, \"parts_before_end\": %zu, \"final_parts\": %zu, \"final_size\": %llu}\n",
           mode, source, (unsigned long long)bytes, t_fin - t0, t0, t_last, t_fin, threads_idle,
           atomic_load(&max_threads), threads_after, bu_status_kib("VmHWM"), u1 - u0, s1 - s0, asset_id,
           stats.parts_total, stats.retries, (unsigned long long)stats.peak_bytes_buffered, late_frames, max_late,
           max_write_block, concurrency, (int)basic, (unsigned long long)cut_before_end, parts_before_end,
           final_parts, (unsigned long long)final_size);
    fio_upload_options_free(opts);
    fio_client_free(client);
    return 0;
}
