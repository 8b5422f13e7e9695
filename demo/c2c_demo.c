/*
 * c2c_demo: upload a recording to Frame.io while it is being recorded, through the C API.
 *
 *   c2c_demo --base-url URL --client-id ID --client-secret S [--allow-http]
 *            --out FILE --filetype MIME [--name NAME]
 *            (--record-cmd "shell command that writes the recording to stdout"
 *             | --replay SRC --rate BYTES_PER_SECOND)
 *            [--concurrency N] [--bandwidth BYTES_PER_SECOND]
 *
 * It pairs the device (prints the code and URL; the emulator approves by itself), creates a
 * real-time asset, starts the recorder (the command's stdout goes to FILE, which must grow
 * append-only) and uploads FILE as it grows. When the recorder exits it finishes the upload and
 * prints a summary. The last lines are machine-readable: ASSET_ID=..., BYTES=..., PARTS=...,
 * TAIL_SECONDS=... Ctrl-C cancels the upload (fio_upload_cancel is async-signal-safe).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frameio_c2c.h"

static fio_upload *volatile g_upload = NULL;
static volatile sig_atomic_t g_interrupted = 0;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, fio_status st) {
    char msg[1024];
    fio_last_error_message(msg, sizeof msg);
    fprintf(stderr, "c2c_demo: %s failed: %s (%d): %s\n", what, fio_status_str(st), (int)st, msg);
    exit(1);
}

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
    if (g_upload) fio_upload_cancel(g_upload); /* async-signal-safe: stores an atomic flag */
}

static int on_progress(void *userdata, const fio_progress *p) {
    double *rec_start = (double *)userdata;
    static int tty = -1;
    static double last_line = 0;
    if (tty < 0) tty = isatty(2);
    if (!tty) { /* a log, not a terminal: one line every 2 s, and the last one */
        if (!p->complete && now_s() - last_line < 2.0) return 0;
        last_line = now_s();
    }
    fprintf(stderr,
            "%s  t=%5.1fs  recorded %7.1f MB  sent %7.1f MB  parts %3u/%-3u  in flight %u  %6.1f Mbit/s%s   %s",
            tty ? "\r" : "",
            now_s() - *rec_start, (double)p->bytes_recorded / 1e6, (double)p->bytes_sent / 1e6, p->parts_done,
            p->parts_total, p->parts_in_flight, p->throughput_bps * 8 / 1e6, p->complete ? "  complete" : "",
            tty ? "" : "\n");
    return 0;
}

struct replay {
    const char *src;
    int out_fd;
    double rate;
    volatile int done;
};

/* Copies `src` into the growing output at `rate` bytes per second: a recorder stand-in for FILE=. */
static void *replay_thread(void *arg) {
    struct replay *r = arg;
    int in = open(r->src, O_RDONLY);
    if (in < 0) {
        perror("c2c_demo: open replay source");
        r->done = 1;
        return NULL;
    }
    static char buf[1 << 16];
    double start = now_s();
    double sent = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(r->out_fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                perror("c2c_demo: write");
                goto out;
            }
            off += w;
        }
        sent += (double)n;
        double ahead = sent / r->rate - (now_s() - start);
        if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
        if (g_interrupted) break;
    }
out:
    close(in);
    r->done = 1;
    return NULL;
}

static const char *arg_value(int argc, char **argv, const char *name) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}

static int has_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *base_url = arg_value(argc, argv, "--base-url");
    const char *client_id = arg_value(argc, argv, "--client-id");
    const char *client_secret = arg_value(argc, argv, "--client-secret");
    const char *out_path = arg_value(argc, argv, "--out");
    const char *filetype = arg_value(argc, argv, "--filetype");
    const char *name = arg_value(argc, argv, "--name");
    const char *record_cmd = arg_value(argc, argv, "--record-cmd");
    const char *replay_src = arg_value(argc, argv, "--replay");
    const char *rate_s = arg_value(argc, argv, "--rate");
    const char *conc_s = arg_value(argc, argv, "--concurrency");
    const char *bw_s = arg_value(argc, argv, "--bandwidth");
    if (!client_id || !client_secret || !out_path || !filetype || (!record_cmd && !(replay_src && rate_s))) {
        fprintf(stderr, "usage: see the comment at the top of demo/c2c_demo.c\n");
        return 2;
    }

    /* 1. client */
    fio_config *cfg = fio_config_new();
    fio_status st;
    if (!cfg) die("fio_config_new", FIO_ERR_LIMIT_EXCEEDED);
    if (has_flag(argc, argv, "--allow-http") && (st = fio_config_set_allow_http(cfg, true))) die("allow_http", st);
    if (base_url && (st = fio_config_set_base_url(cfg, base_url))) die("fio_config_set_base_url", st);
    if ((st = fio_config_set_client_id(cfg, client_id))) die("fio_config_set_client_id", st);
    if ((st = fio_config_set_client_secret(cfg, client_secret))) die("fio_config_set_client_secret", st);
    if ((st = fio_config_set_client_version(cfg, "1.0.0"))) die("fio_config_set_client_version", st);
    fio_client *client = NULL;
    if ((st = fio_client_new(cfg, &client))) die("fio_client_new", st);
    fio_config_free(cfg);

    /* 2. pairing */
    fio_pairing *pairing = NULL;
    if ((st = fio_pairing_start(client, &pairing))) die("fio_pairing_start", st);
    const char *complete_uri = fio_pairing_verification_uri_complete(pairing);
    printf("Pair this device: enter code %s at %s%s%s\n", fio_pairing_user_code(pairing),
           fio_pairing_verification_uri(pairing), complete_uri ? " or open " : "", complete_uri ? complete_uri : "");
    fflush(stdout);
    if ((st = fio_pairing_wait(client, pairing))) die("fio_pairing_wait", st);
    fio_pairing_free(pairing);
    printf("Paired.\n");
    /* part PUTs to S3 do not count as device activity: keep the device online while uploading */
    if ((st = fio_heartbeat_start(client, 120))) die("fio_heartbeat_start", st);

    /* 3. the recording file exists (empty) before the upload opens it */
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0) {
        perror("c2c_demo: create output");
        return 1;
    }

    /* 4. the upload: follows the file as it grows */
    double rec_start = now_s();
    fio_upload_options *opts = fio_upload_options_new();
    if (!opts) die("fio_upload_options_new", FIO_ERR_LIMIT_EXCEEDED);
    if ((st = fio_upload_options_set_watch_interval(opts, 50))) die("set_watch_interval", st);
    if ((st = fio_upload_options_set_progress(opts, on_progress, &rec_start, 250))) die("set_progress", st);
    if (conc_s && (st = fio_upload_options_set_concurrency(opts, (uint32_t)atoi(conc_s)))) die("set_concurrency", st);
    if (bw_s && (st = fio_upload_options_set_bandwidth_limit(opts, strtoull(bw_s, NULL, 10)))) die("set_bandwidth", st);
    fio_asset_params params;
    fio_asset_params_init(&params);
    params.name = name ? name : strrchr(out_path, '/') ? strrchr(out_path, '/') + 1 : out_path;
    params.filetype = filetype;
    params.realtime = true;
    params.has_offset = true;
    params.offset = 0;
    fio_upload *up = NULL;
    if ((st = fio_upload_start(client, &params, out_path, opts, &up))) die("fio_upload_start", st);
    fio_upload_options_free(opts);
    g_upload = up;
    signal(SIGINT, on_sigint);
    printf("Recording and uploading to asset %s\n", fio_upload_asset_id(up));
    fflush(stdout);

    /* 5. the recorder */
    rec_start = now_s();
    pid_t pid = -1;
    pthread_t th;
    struct replay rp = {replay_src, out_fd, rate_s ? atof(rate_s) : 0, 0};
    if (record_cmd) {
        pid = fork();
        if (pid == 0) {
            dup2(out_fd, 1);
            close(out_fd);
            execl("/bin/sh", "sh", "-c", record_cmd, (char *)NULL);
            _exit(127);
        }
        if (pid < 0) {
            perror("c2c_demo: fork");
            return 1;
        }
    } else {
        pthread_create(&th, NULL, replay_thread, &rp);
    }
    int rec_status = 0;
    for (;;) {
        if (record_cmd) {
            pid_t w = waitpid(pid, &rec_status, WNOHANG);
            if (w == pid) break;
        } else if (rp.done) {
            pthread_join(th, NULL);
            break;
        }
        struct stat sb;
        if (fstat(out_fd, &sb) == 0) fio_upload_file_grew(up, (uint64_t)sb.st_size);
        usleep(50 * 1000);
        if (g_interrupted) {
            if (pid > 0) kill(pid, SIGINT);
        }
    }
    double rec_end = now_s();
    close(out_fd);
    if (record_cmd && !(WIFEXITED(rec_status) && WEXITSTATUS(rec_status) == 0) && !g_interrupted) {
        fprintf(stderr, "\nc2c_demo: the recorder failed (status %d)\n", rec_status);
        fio_upload_free(up);
        return 1;
    }

    /* 6. finish: the final part goes out now; wait for the asset to complete */
    fio_progress p;
    st = fio_upload_finish(up, &p);
    double done = now_s();
    fprintf(stderr, "\n");
    if (st) {
        char msg[1024];
        fio_last_error_message(msg, sizeof msg);
        fprintf(stderr, "c2c_demo: upload failed: %s: %s\n", fio_status_str(st), msg);
        size_t n = fio_upload_part_count(up);
        for (size_t i = 0; i < n; i++) {
            fio_upload_part part;
            if (fio_upload_part_info(up, i, &part) == FIO_OK && part.state != FIO_PART_DONE)
                fprintf(stderr, "  part %u (%llu bytes at %llu): state %u, %u attempts, last status %s\n", part.number,
                        (unsigned long long)part.size, (unsigned long long)part.offset, part.state, part.attempts,
                        fio_status_str(part.last_status));
        }
        g_upload = NULL;
        fio_upload_free(up);
        fio_client_free(client);
        return 1;
    }
    printf("\nSummary\n");
    printf("  recording length      %.1f s\n", rec_end - rec_start);
    printf("  bytes                 %llu (%.1f MB)\n", (unsigned long long)p.bytes_done, (double)p.bytes_done / 1e6);
    printf("  parts                 %u\n", p.parts_total);
    printf("  retries / re-registrations  %u / %u\n", p.retries, p.reregistrations);
    printf("  recording end -> asset complete  %.2f s\n", done - rec_end);
    printf("ASSET_ID=%s\nBYTES=%llu\nPARTS=%u\nTAIL_SECONDS=%.3f\nRECORDING_SECONDS=%.3f\n", fio_upload_asset_id(up),
           (unsigned long long)p.bytes_done, p.parts_total, done - rec_end, rec_end - rec_start);
    g_upload = NULL;
    fio_upload_free(up);
    fio_client_free(client);
    return 0;
}
