/*
 * test_upload: the fio_upload_* C API against the emulator. Driven by tests/c/test_upload.sh, which
 * starts the emulator for each case, scripts its faults and checks the SHA-256 it reports.
 *
 *   test_upload API_URL grow FILE BYTES          growing file written here, fio_upload_file_grew per MiB
 *   test_upload API_URL push FILE                pushed bytes (fio_upload_write), 12 MiB budget
 *   test_upload API_URL upload FILE STATE BPS    file upload with a state file and a bandwidth cap
 *   test_upload API_URL resume STATE             fio_upload_resume + finish
 *   test_upload API_URL complete FILE [basic]    fio_upload_file (real-time or basic)
 *   test_upload API_URL cancel FILE              cancel from another thread: expects FIO_ERR_CANCELLED
 *   test_upload API_URL fail FILE STATUS         expects fio_upload_finish to fail with STATUS
 *   test_upload API_URL rewrite FILE             file patched after upload: expects FIO_ERR_IO at finish
 *   test_upload API_URL api                      argument checks (NULLs, wrong source, bad options)
 *
 * Prints ASSET_ID=<id> on success; exit status 0 when the case went as expected.
 * Tokens are kept in $FIO_TEST_TOKENS (if set) so a resumed process acts as the same device.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frameio_c2c.h"

#define MIB (1024u * 1024u)

static int fail(const char *what, fio_status st) {
    char msg[1024];
    fio_last_error_message(msg, sizeof msg);
    fprintf(stderr, "test_upload: %s: %s (%d): %s\n", what, fio_status_str(st), (int)st, msg);
    return 1;
}

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        fio_status st_ = (call);                                                                                   \
        if (st_ != FIO_OK) return fail(#call, st_);                                                                \
    } while (0)

#define EXPECT(cond)                                                                                               \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "test_upload: %s:%d: expected %s\n", __FILE__, __LINE__, #cond);                       \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

static fio_client *g_client;

static int load_tokens(const char *path) {
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char a[4096], r[4096];
    unsigned long long exp = 0;
    int ok = fscanf(f, "%4095s %4095s %llu", a, r, &exp) == 3;
    fclose(f);
    return ok && fio_client_set_tokens(g_client, a, r, exp) == FIO_OK;
}

static void save_tokens(const char *path) {
    char *a = NULL, *r = NULL;
    uint64_t exp = 0;
    if (!path || fio_client_get_tokens(g_client, &a, &r, &exp) != FIO_OK) return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s %s %llu\n", a, r, (unsigned long long)exp);
        fclose(f);
    }
    fio_string_free(a);
    fio_string_free(r);
}

static int connect_client(const char *api, const char *token_file) {
    fio_config *cfg = fio_config_new();
    EXPECT(cfg != NULL);
    CHECK(fio_config_set_allow_http(cfg, true));
    CHECK(fio_config_set_base_url(cfg, api));
    CHECK(fio_config_set_client_id(cfg, "c-test-unit-0001"));
    CHECK(fio_config_set_client_secret(cfg, "fio-emulator-secret"));
    CHECK(fio_config_set_client_version(cfg, "1.0.0"));
    CHECK(fio_client_new(cfg, &g_client));
    fio_config_free(cfg);
    if (load_tokens(token_file)) return 0;
    fio_pairing *p = NULL;
    CHECK(fio_pairing_start(g_client, &p));
    CHECK(fio_pairing_wait(g_client, p));
    fio_pairing_free(p);
    save_tokens(token_file);
    return 0;
}

static void params_for(fio_asset_params *p, const char *name, bool realtime) {
    fio_asset_params_init(p);
    p->name = name;
    p->filetype = "video/mp4";
    p->realtime = realtime;
    p->has_offset = true;
    p->offset = 0;
    p->has_channel = true;
    p->channel = 0;
}

static uint64_t g_seed = 88172645463325252ull;
static void fill(unsigned char *buf, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        g_seed ^= g_seed << 13;
        g_seed ^= g_seed >> 7;
        g_seed ^= g_seed << 17;
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(buf + i, &g_seed, k);
    }
}

static unsigned g_progress_calls;
static int on_progress(void *ud, const fio_progress *p) {
    (void)ud;
    (void)p;
    __atomic_add_fetch(&g_progress_calls, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void print_result(const fio_upload *up, const fio_progress *p) {
    printf("ASSET_ID=%s\nBYTES=%llu\nPARTS=%u\nRETRIES=%u\nREREGISTRATIONS=%u\n", fio_upload_asset_id(up),
           (unsigned long long)p->bytes_done, p->parts_total, p->retries, p->reregistrations);
}

static int case_grow(const char *path, uint64_t total) {
    FILE *f = fopen(path, "wb");
    EXPECT(f != NULL);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_progress(o, on_progress, NULL, 100));
    fio_asset_params params;
    params_for(&params, "c-grow.mp4", true);
    fio_upload *up = NULL;
    CHECK(fio_upload_start(g_client, &params, path, o, &up));
    fio_upload_options_free(o);
    unsigned char *buf = malloc(MIB);
    uint64_t written = 0;
    uint64_t sent_while_recording = 0;
    while (written < total) {
        size_t n = total - written < MIB ? (size_t)(total - written) : MIB;
        fill(buf, n);
        EXPECT(fwrite(buf, 1, n, f) == n);
        fflush(f);
        written += n;
        CHECK(fio_upload_file_grew(up, written));
        fio_progress s;
        CHECK(fio_upload_stats(up, &s));
        sent_while_recording = s.bytes_sent;
        usleep(4000); /* about 250 MB/s: a fast camera, still slower than the generator */
    }
    fclose(f);
    free(buf);
    fio_progress p;
    CHECK(fio_upload_finish(up, &p));
    EXPECT(p.complete);
    EXPECT(p.bytes_done == total);
    EXPECT(p.parts_total >= 20);
    EXPECT(sent_while_recording > 0); /* parts went out while the file was still growing */
    EXPECT(g_progress_calls > 0);
    size_t n = fio_upload_part_count(up);
    EXPECT(n == p.parts_total);
    fio_upload_part last;
    CHECK(fio_upload_part_info(up, n - 1, &last));
    EXPECT(last.is_final && last.state == FIO_PART_DONE && last.offset + last.size == total);
    print_result(up, &p);
    fio_upload_free(up);
    return 0;
}

static int case_push(const char *path) {
    FILE *f = fopen(path, "rb");
    EXPECT(f != NULL);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_buffer_budget(o, 12ull * MIB));
    CHECK(fio_upload_options_set_concurrency(o, 2));
    fio_asset_params params;
    params_for(&params, "c-push.mp4", true);
    fio_upload *up = NULL;
    CHECK(fio_upload_start(g_client, &params, NULL, o, &up));
    fio_upload_options_free(o);
    EXPECT(fio_upload_file_grew(up, 10) == FIO_ERR_WRONG_STATE);
    static unsigned char buf[65539];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) CHECK(fio_upload_write(up, buf, n));
    fclose(f);
    fio_progress p;
    CHECK(fio_upload_finish(up, &p));
    EXPECT(p.peak_bytes_buffered <= 12ull * MIB);
    EXPECT(fio_upload_write(up, buf, 1) == FIO_ERR_WRONG_STATE);
    print_result(up, &p);
    fio_upload_free(up);
    return 0;
}

static int case_upload(const char *path, const char *state, uint64_t bps) {
    struct stat sb;
    EXPECT(stat(path, &sb) == 0);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_state_file(o, state));
    if (bps) CHECK(fio_upload_options_set_bandwidth_limit(o, bps));
    CHECK(fio_upload_options_set_concurrency(o, 2));
    fio_asset_params params;
    params_for(&params, "c-resume.mp4", true);
    fio_upload *up = NULL;
    CHECK(fio_upload_start(g_client, &params, path, o, &up));
    fio_upload_options_free(o);
    CHECK(fio_upload_file_grew(up, (uint64_t)sb.st_size));
    fio_progress p;
    CHECK(fio_upload_finish(up, &p));
    print_result(up, &p);
    fio_upload_free(up);
    return 0;
}

static int case_resume(const char *state) {
    fio_upload *up = NULL;
    CHECK(fio_upload_resume(g_client, state, NULL, &up));
    EXPECT(fio_upload_resume_offset(up) == 0); /* a file source needs nothing pushed again */
    fio_progress before;
    CHECK(fio_upload_stats(up, &before));
    fio_progress p;
    CHECK(fio_upload_finish(up, &p));
    printf("DONE_BEFORE_RESUME=%llu\n", (unsigned long long)before.bytes_done);
    print_result(up, &p);
    fio_upload_free(up);
    return 0;
}

static int case_complete(const char *path, int basic) {
    fio_asset_params params;
    params_for(&params, basic ? "c-basic.mp4" : "c-complete.mp4", !basic);
    fio_progress p;
    CHECK(fio_upload_file(g_client, &params, path, NULL, &p));
    EXPECT(p.complete);
    printf("PARTS=%u\n", p.parts_total);
    return 0;
}

static void *cancel_later(void *arg) {
    usleep(800 * 1000);
    fio_upload_cancel((const fio_upload *)arg);
    return NULL;
}

static int case_cancel(const char *path) {
    struct stat sb;
    EXPECT(stat(path, &sb) == 0);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_bandwidth_limit(o, 8ull * MIB));
    fio_asset_params params;
    params_for(&params, "c-cancel.mp4", true);
    fio_upload *up = NULL;
    CHECK(fio_upload_start(g_client, &params, path, o, &up));
    fio_upload_options_free(o);
    CHECK(fio_upload_file_grew(up, (uint64_t)sb.st_size));
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, up);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fio_status st = fio_upload_finish(up, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    EXPECT(st == FIO_ERR_CANCELLED);
    EXPECT(fio_upload_status(up) == FIO_ERR_CANCELLED);
    EXPECT(b.tv_sec - a.tv_sec < 5);
    printf("ASSET_ID=%s\n", fio_upload_asset_id(up));
    fio_upload_free(up);
    return 0;
}

static int case_fail(const char *path, int want) {
    struct stat sb;
    EXPECT(stat(path, &sb) == 0);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_retry(o, 2000, 50));
    fio_asset_params params;
    params_for(&params, "c-fail.mp4", true);
    fio_upload *up = NULL;
    fio_status st = fio_upload_start(g_client, &params, path, o, &up);
    fio_upload_options_free(o);
    if (st != FIO_OK) {
        if (st == want) return 0;
        return fail("fio_upload_start", st);
    }
    CHECK(fio_upload_file_grew(up, (uint64_t)sb.st_size));
    st = fio_upload_finish(up, NULL);
    if (st != want) {
        fio_upload_free(up);
        return fail("fio_upload_finish (unexpected status)", st);
    }
    char msg[512];
    fio_last_error_message(msg, sizeof msg);
    printf("FAILED_AS_EXPECTED=%s: %s\n", fio_status_str(st), msg);
    /* per-part detail names the failed part */
    size_t n = fio_upload_part_count(up);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        fio_upload_part part;
        CHECK(fio_upload_part_info(up, i, &part));
        if (part.state == FIO_PART_FAILED) {
            failed++;
            EXPECT(part.last_status == want);
        }
    }
    EXPECT(failed >= 1);
    EXPECT(fio_upload_status(up) == want);
    fio_upload_free(up);
    return 0;
}

static int case_rewrite(const char *path) {
    FILE *f = fopen(path, "wb");
    EXPECT(f != NULL);
    unsigned char *buf = malloc(12 * MIB);
    fill(buf, 12 * MIB);
    EXPECT(fwrite(buf, 1, 12 * MIB, f) == 12 * MIB);
    fclose(f);
    free(buf);
    fio_upload_options *o = fio_upload_options_new();
    CHECK(fio_upload_options_set_bandwidth_limit(o, 4ull * MIB));
    fio_asset_params params;
    params_for(&params, "c-rewrite.mp4", true);
    fio_upload *up = NULL;
    CHECK(fio_upload_start(g_client, &params, path, o, &up));
    fio_upload_options_free(o);
    CHECK(fio_upload_file_grew(up, 12ull * MIB));
    CHECK(fio_upload_set_bandwidth_limit(up, 0)); /* lift the cap while it runs */
    fio_progress s;
    for (int i = 0; i < 500; i++) {
        CHECK(fio_upload_stats(up, &s));
        if (s.parts_done >= 2) break;
        usleep(10 * 1000);
    }
    EXPECT(s.parts_done >= 2);
    /* a muxer seeking back to patch its header after part 1 went out */
    f = fopen(path, "r+b");
    EXPECT(f != NULL);
    fseek(f, 24, SEEK_SET);
    fwrite("\0\0\0\x08wide", 1, 8, f);
    fclose(f);
    fio_status st = fio_upload_finish(up, NULL);
    EXPECT(st == FIO_ERR_IO);
    EXPECT(fio_upload_status(up) == FIO_ERR_IO);
    printf("ASSET_ID=%s\n", fio_upload_asset_id(up));
    fio_upload_free(up);
    return 0;
}

static int case_api(void) {
    fio_upload *up = NULL;
    fio_asset_params params;
    params_for(&params, "x.mp4", true);
    EXPECT(fio_upload_start(NULL, &params, NULL, NULL, &up) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_start(g_client, NULL, NULL, NULL, &up) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_start(g_client, &params, NULL, NULL, NULL) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_start(g_client, &params, "/nonexistent/file.mp4", NULL, &up) == FIO_ERR_IO);
    EXPECT(up == NULL);
    EXPECT(fio_upload_write(NULL, (const uint8_t *)"x", 1) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_file_grew(NULL, 1) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_finish(NULL, NULL) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_stats(NULL, NULL) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_set_bandwidth_limit(NULL, 1) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_asset_id(NULL) == NULL);
    EXPECT(fio_upload_part_count(NULL) == 0);
    fio_upload_cancel(NULL);
    fio_upload_free(NULL);
    fio_upload_options_free(NULL);
    fio_upload_options *o = fio_upload_options_new();
    EXPECT(fio_upload_options_set_concurrency(o, 0) == FIO_ERR_INVALID_ARGUMENT);
    EXPECT(fio_upload_options_set_buffer_budget(o, 1000) == FIO_ERR_INVALID_ARGUMENT);
    EXPECT(fio_upload_options_set_part_sizes(o, 1000, 0, 0) == FIO_ERR_INVALID_ARGUMENT);
    EXPECT(fio_upload_options_set_part_sizes(o, 0, 0, 6ull << 30) == FIO_ERR_INVALID_ARGUMENT);
    CHECK(fio_upload_options_set_part_sizes(o, 8ull * MIB, 256, 1ull << 30));
    EXPECT(fio_upload_options_set_concurrency(NULL, 1) == FIO_ERR_NULL_ARGUMENT);
    EXPECT(fio_upload_resume(g_client, "/nonexistent/state", o, &up) == FIO_ERR_IO);
    /* a pushed-bytes upload that writes nothing: an empty asset, one empty final part */
    CHECK(fio_upload_start(g_client, &params, NULL, o, &up));
    fio_upload_options_free(o);
    EXPECT(fio_upload_write(up, NULL, 0) == FIO_OK);
    EXPECT(fio_upload_write(up, NULL, 5) == FIO_ERR_NULL_ARGUMENT);
    fio_progress p;
    CHECK(fio_upload_finish(up, &p));
    EXPECT(p.complete && p.parts_total == 1 && p.bytes_done == 0);
    fio_upload_part part;
    EXPECT(fio_upload_part_info(up, 1, &part) == FIO_ERR_INVALID_ARGUMENT);
    CHECK(fio_upload_part_info(up, 0, &part));
    EXPECT(part.number == 1 && part.size == 0 && part.is_final && part.state == FIO_PART_DONE);
    printf("ASSET_ID=%s\n", fio_upload_asset_id(up));
    fio_upload_free(up);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see tests/c/test_upload.c\n");
        return 2;
    }
    const char *mode = argv[2];
    const char *tokens = getenv("FIO_TEST_TOKENS"); /* one file per emulator run: resume acts as the same device */
    if (connect_client(argv[1], tokens)) return 1;
    int r;
    if (strcmp(mode, "grow") == 0 && argc == 5)
        r = case_grow(argv[3], strtoull(argv[4], NULL, 10));
    else if (strcmp(mode, "push") == 0 && argc == 4)
        r = case_push(argv[3]);
    else if (strcmp(mode, "upload") == 0 && argc == 6)
        r = case_upload(argv[3], argv[4], strtoull(argv[5], NULL, 10));
    else if (strcmp(mode, "resume") == 0 && argc == 4)
        r = case_resume(argv[3]);
    else if (strcmp(mode, "complete") == 0 && argc >= 4)
        r = case_complete(argv[3], argc > 4 && strcmp(argv[4], "basic") == 0);
    else if (strcmp(mode, "cancel") == 0 && argc == 4)
        r = case_cancel(argv[3]);
    else if (strcmp(mode, "fail") == 0 && argc == 5)
        r = case_fail(argv[3], atoi(argv[4]));
    else if (strcmp(mode, "rewrite") == 0 && argc == 4)
        r = case_rewrite(argv[3]);
    else if (strcmp(mode, "api") == 0)
        r = case_api();
    else {
        fprintf(stderr, "test_upload: bad arguments for %s\n", mode);
        r = 2;
    }
    fio_client_free(g_client);
    return r;
}
