/*
 * C tests of the library's ABI against a running fio-emulator (started by tests/c/run.sh, which exports
 * FIO_TEST_API). Built with -Wall -Wextra -Werror; run plain, under ASan and under valgrind.
 * Talks to the emulator's control API with a tiny HTTP/1.0 client over a socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "frameio_c2c.h"

#define SECRET "fio-emulator-secret"
#define MIB (1024u * 1024u)

static int failures = 0;
static int checks = 0;
static char api[256];
static int api_port = 0;

#define CHECK_TRUE(cond)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                  \
    } while (0)

#define CHECK_STATUS(call, expected)                                                       \
    do {                                                                                   \
        fio_status got_ = (call);                                                          \
        checks++;                                                                          \
        if (got_ != (expected)) {                                                          \
            char m_[512];                                                                  \
            fio_last_error_message(m_, sizeof m_);                                         \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n  %s\n", __FILE__, __LINE__, \
                    #call, (int)got_, fio_status_str(got_), (int)(expected),               \
                    fio_status_str(expected), m_);                                         \
        }                                                                                  \
    } while (0)

#define OK(call) CHECK_STATUS(call, FIO_OK)

/* ---------------------------------------------------------------------------------------------------- */
/* Control API client */

/* Send one HTTP/1.0 request to the emulator's API port; returns the status, body into out (NUL-terminated). */
static int http(const char *method, const char *path, const char *body, char *out, size_t out_len) {
    struct sockaddr_in addr;
    char req[2048];
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int status = 0;
    char *p;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)api_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    snprintf(req, sizeof req,
             "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)n;
    resp[got] = 0;
    close(fd);
    sscanf(resp, "HTTP/%*s %d", &status);
    p = strstr(resp, "\r\n\r\n");
    if (out != NULL && out_len > 0) {
        snprintf(out, out_len, "%s", p ? p + 4 : "");
    }
    return status;
}

static int count_requests(void) {
    static char buf[1 << 20];
    int n = 0;
    const char *p;
    http("GET", "/_emulator/requests", NULL, buf, sizeof buf);
    for (p = buf; (p = strstr(p, "\"method\"")) != NULL; p++) n++;
    return n;
}

static void clear_requests(void) { http("DELETE", "/_emulator/requests", NULL, NULL, 0); }

static void approve(const char *user_code) {
    char body[128];
    snprintf(body, sizeof body, "{\"user_code\": \"%s\"}", user_code);
    CHECK_TRUE(http("POST", "/_emulator/pairing/approve", body, NULL, 0) == 200);
}

/* The emulator's state and sha256 of an asset (sha may be empty). */
static void asset_state(const char *id, char *state, size_t slen, char *sha, size_t shalen) {
    char path[256];
    static char buf[1 << 16];
    const char *p;
    snprintf(path, sizeof path, "/_emulator/assets/%s", id);
    http("GET", path, NULL, buf, sizeof buf);
    state[0] = 0;
    sha[0] = 0;
    if ((p = strstr(buf, "\"state\":\"")) != NULL) sscanf(p + 9, "%31[^\"]", state);
    (void)slen;
    if ((p = strstr(buf, "\"sha256\":\"")) != NULL) sscanf(p + 10, "%64[0-9a-f]", sha);
    (void)shalen;
}

static void sha256_of_file(const char *path, char out[65]) {
    char cmd[512];
    FILE *f;
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    out[0] = 0;
    f = popen(cmd, "r");
    if (f != NULL) {
        if (fscanf(f, "%64s", out) != 1) out[0] = 0;
        pclose(f);
    }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Clients */

static fio_config *test_config(const char *client_id) {
    fio_config *cfg = fio_config_new();
    CHECK_TRUE(cfg != NULL);
    OK(fio_config_set_allow_http(cfg, true));
    OK(fio_config_set_base_url(cfg, api));
    OK(fio_config_set_client_id(cfg, client_id));
    OK(fio_config_set_client_secret(cfg, SECRET));
    OK(fio_config_set_client_version(cfg, "2.0.0"));
    OK(fio_config_set_retry(cfg, 3, 20, 100, 20000));
    return cfg;
}

static int token_cb_calls = 0;
static char last_access[512];

static void on_tokens(void *userdata, const char *access, const char *refresh, uint64_t expires_at) {
    int *calls = (int *)userdata;
    (*calls)++;
    snprintf(last_access, sizeof last_access, "%s", access);
    (void)refresh;
    (void)expires_at;
}

static void pair(fio_client *client) {
    fio_pairing *p = NULL;
    OK(fio_pairing_start(client, &p));
    if (p == NULL) return;
    approve(fio_pairing_user_code(p));
    OK(fio_pairing_wait(client, p));
    fio_pairing_free(p);
}

static fio_client *paired_client(const char *client_id) {
    fio_config *cfg = test_config(client_id);
    fio_client *client = NULL;
    OK(fio_client_new(cfg, &client));
    fio_config_free(cfg);
    pair(client);
    return client;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Tests */

static void test_version_and_status(void) {
    char v[32];
    int code;
    snprintf(v, sizeof v, "%d.%d.%d", FIO_VERSION_MAJOR, FIO_VERSION_MINOR, FIO_VERSION_PATCH);
    CHECK_TRUE(strcmp(fio_version(), v) == 0);
    CHECK_TRUE(strcmp(fio_status_str(FIO_OK), "ok") == 0);
    for (code = 1; code <= FIO_ERR_HTTP_STATUS; code++) {
        const char *s = fio_status_str(code);
        CHECK_TRUE(s != NULL && strlen(s) > 0 && strcmp(s, "unknown status") != 0);
    }
    CHECK_TRUE(strcmp(fio_status_str(9999), "unknown status") == 0);
    CHECK_TRUE(strcmp(fio_status_str(-1), "unknown status") == 0);
}

static void test_null_and_bad_args(void) {
    fio_config *cfg = fio_config_new();
    fio_client *client = (fio_client *)0x1; /* must stay untouched on error */
    char buf[8];
    char *s = (char *)0x1;
    fio_url_list *urls = (fio_url_list *)0x1;

    /* _free(NULL) are no-ops */
    fio_config_free(NULL);
    fio_client_free(NULL);
    fio_pairing_free(NULL);
    fio_asset_free(NULL);
    fio_url_list_free(NULL);
    fio_string_free(NULL);
    fio_pairing_cancel(NULL);
    fio_asset_params_init(NULL);

    CHECK_STATUS(fio_config_set_base_url(NULL, "https://x"), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_config_set_base_url(cfg, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_config_set_client_id(cfg, "\xff\xfe"), FIO_ERR_BAD_UTF8);
    CHECK_TRUE(fio_last_error_status() == FIO_ERR_BAD_UTF8);
    CHECK_TRUE(fio_last_error_length() > 0);
    CHECK_STATUS(fio_last_error_message(buf, sizeof buf), FIO_ERR_BUFFER_TOO_SMALL);
    CHECK_TRUE(strlen(buf) == sizeof buf - 1);
    CHECK_STATUS(fio_last_error_message(NULL, 10), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_config_set_client_version(cfg, "1.2"), FIO_ERR_INVALID_ARGUMENT);
    {   /* http:// passes the setter (any order with allow_http); fio_client_new refuses it unless allowed */
        fio_config *h = fio_config_new();
        fio_client *hc = NULL;
        OK(fio_config_set_client_id(h, "order-test"));
        OK(fio_config_set_client_secret(h, "s"));
        OK(fio_config_set_base_url(h, "http://127.0.0.1:1"));
        CHECK_STATUS(fio_client_new(h, &hc), FIO_ERR_INVALID_ARGUMENT);
        CHECK_TRUE(hc == NULL);
        OK(fio_config_set_allow_http(h, true));
        OK(fio_client_new(h, &hc));
        CHECK_TRUE(hc != NULL);
        fio_client_free(hc);
        fio_config_free(h);
    }
    CHECK_STATUS(fio_config_set_base_url(cfg, "http://"), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_config_set_log_callback(cfg, 9, NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_config_set_retry(cfg, 0, 1, 1, 1), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_config_set_extra_ca_pem(cfg, NULL, 5), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_config_set_proxy(cfg, "not a url"), FIO_ERR_INVALID_ARGUMENT);
    OK(fio_config_set_proxy(cfg, NULL));

    /* A client needs id and secret */
    CHECK_STATUS(fio_client_new(cfg, &client), FIO_ERR_INVALID_ARGUMENT);
    CHECK_TRUE(client == (fio_client *)0x1);
    CHECK_STATUS(fio_client_new(NULL, &client), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_client_new(cfg, NULL), FIO_ERR_NULL_ARGUMENT);
    OK(fio_config_set_client_id(cfg, "unit-null-test"));
    OK(fio_config_set_client_secret(cfg, "s"));
    OK(fio_config_set_extra_ca_pem(cfg, (const uint8_t *)"garbage", 7));
    CHECK_STATUS(fio_client_new(cfg, &client), FIO_ERR_INVALID_ARGUMENT);
    fio_config_free(cfg);

    /* Every client call with a NULL client */
    CHECK_STATUS(fio_client_refresh(NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_client_revoke(NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_heartbeat(NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_device_info(NULL, &s), FIO_ERR_NULL_ARGUMENT);
    CHECK_TRUE(s == (char *)0x1);
    CHECK_STATUS(fio_pairing_start(NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_register_parts(NULL, "a", NULL, 0, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_NULL_ARGUMENT);
    CHECK_TRUE(urls == (fio_url_list *)0x1);
    CHECK_STATUS(fio_put_part(NULL, "u", NULL, 0, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_put_part_fd(NULL, "u", 0, 0, 0, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_comment_create(NULL, "a", "t", -1.0, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_asset_create(NULL, NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_TRUE(fio_asset_id(NULL) == NULL);
    CHECK_TRUE(fio_asset_upload_url_count(NULL) == 0);
    CHECK_TRUE(fio_url_list_len(NULL) == 0);
    CHECK_TRUE(fio_url_list_get(NULL, 0) == NULL);
    CHECK_TRUE(fio_pairing_user_code(NULL) == NULL);
    CHECK_TRUE(fio_last_http_status() == 0);
}

static void test_pairing_flow(void) {
    fio_config *cfg = test_config("unit-c-pair");
    fio_client *client = NULL, *second = NULL;
    fio_pairing *p = NULL;
    char *access = NULL, *refresh = NULL;
    uint64_t exp = 0;
    char code[16];

    token_cb_calls = 0;
    OK(fio_config_set_url_pairing(cfg, true));
    OK(fio_config_set_token_callback(cfg, on_tokens, &token_cb_calls));
    OK(fio_client_new(cfg, &client));
    CHECK_STATUS(fio_client_get_tokens(client, &access, &refresh, &exp), FIO_ERR_PAIRING_REQUIRED);
    CHECK_TRUE(access == NULL);
    OK(fio_pairing_start(client, &p));
    CHECK_TRUE(p != NULL);
    if (p == NULL) return;
    CHECK_TRUE(strlen(fio_pairing_user_code(p)) == 6);
    CHECK_TRUE(strncmp(fio_pairing_verification_uri(p), "http", 4) == 0);
    CHECK_TRUE(fio_pairing_verification_uri_complete(p) != NULL &&
               strstr(fio_pairing_verification_uri_complete(p), fio_pairing_user_code(p)) != NULL);
    CHECK_TRUE(fio_pairing_expires_in(p) > 10);
    CHECK_TRUE(fio_pairing_interval_ms(p) >= 100);
    usleep(fio_pairing_interval_ms(p) * 1000u + 50000u);
    CHECK_STATUS(fio_pairing_poll(client, p), FIO_ERR_AUTHORIZATION_PENDING);
    CHECK_TRUE(fio_last_http_status() == 400);
    {
        char sc[64];
        OK(fio_last_server_code(sc, sizeof sc));
        CHECK_TRUE(strcmp(sc, "authorization_pending") == 0);
    }
    snprintf(code, sizeof code, "%s", fio_pairing_user_code(p));
    approve(code);
    OK(fio_pairing_wait(client, p));
    fio_pairing_free(p);
    CHECK_TRUE(token_cb_calls == 1);
    OK(fio_client_get_tokens(client, &access, &refresh, &exp));
    CHECK_TRUE(access != NULL && strcmp(access, last_access) == 0);
    CHECK_TRUE(exp > (uint64_t)time(NULL));

    /* A second client (after a reboot) with the saved tokens. */
    OK(fio_client_new(cfg, &second));
    OK(fio_client_set_tokens(second, access, refresh, exp));
    OK(fio_heartbeat(second));
    CHECK_STATUS(fio_client_set_tokens(second, "", refresh, exp), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_client_set_tokens(second, NULL, refresh, exp), FIO_ERR_NULL_ARGUMENT);
    fio_string_free(access);
    fio_string_free(refresh);
    OK(fio_client_clear_tokens(second));
    CHECK_STATUS(fio_heartbeat(second), FIO_ERR_PAIRING_REQUIRED);
    fio_client_free(second);
    fio_client_free(client);
    fio_config_free(cfg);
}

struct cancel_arg {
    const fio_pairing *p;
};

static void *cancel_later(void *arg) {
    usleep(300000);
    fio_pairing_cancel(((struct cancel_arg *)arg)->p);
    return NULL;
}

static void test_pairing_cancel_and_wrong_secret(void) {
    fio_config *cfg = test_config("unit-c-cancel");
    fio_client *client = NULL;
    fio_pairing *p = NULL;
    pthread_t t;
    struct cancel_arg arg;
    time_t t0;
    char sc[64];

    OK(fio_client_new(cfg, &client));
    OK(fio_pairing_start(client, &p));
    if (p != NULL) {
        arg.p = p;
        pthread_create(&t, NULL, cancel_later, &arg);
        t0 = time(NULL);
        CHECK_STATUS(fio_pairing_wait(client, p), FIO_ERR_CANCELLED);
        CHECK_TRUE(time(NULL) - t0 < 3);
        pthread_join(t, NULL);
        fio_pairing_free(p);
    }
    fio_client_free(client);

    OK(fio_config_set_client_secret(cfg, "wrong-secret"));
    OK(fio_client_new(cfg, &client));
    p = NULL;
    CHECK_STATUS(fio_pairing_start(client, &p), FIO_ERR_INVALID_CLIENT);
    CHECK_TRUE(p == NULL);
    CHECK_TRUE(fio_last_http_status() == 400);
    OK(fio_last_server_code(sc, sizeof sc));
    CHECK_TRUE(strcmp(sc, "invalid_client") == 0);
    fio_client_free(client);
    fio_config_free(cfg);
}

static void test_device_and_heartbeat(void) {
    fio_client *client = paired_client("unit-c-device");
    char *json = NULL;
    OK(fio_device_info(client, &json));
    CHECK_TRUE(json != NULL && strstr(json, "\"project_device\"") != NULL);
    fio_string_free(json);
    OK(fio_heartbeat(client));
    OK(fio_heartbeat_start(client, 60));
    OK(fio_heartbeat_start(client, 0)); /* re-time */
    OK(fio_heartbeat_stop(client));
    OK(fio_heartbeat_stop(client));
    OK(fio_heartbeat_start(client, 1000)); /* clamped; stopped by fio_client_free */
    fio_client_free(client);
}

static int progress_bytes = 0;
static int on_progress(void *userdata, uint64_t n) {
    (void)userdata;
    progress_bytes += (int)n;
    return 0;
}
static int cancel_progress(void *userdata, uint64_t n) {
    (void)userdata;
    (void)n;
    return 1;
}

static void test_realtime_parts_and_comments(void) {
    fio_client *client = paired_client("unit-c-rt");
    fio_asset_params params;
    fio_asset *asset = NULL;
    fio_url_list *urls = NULL;
    fio_part_spec spec;
    size_t total = 5 * MIB + 1234567, i;
    unsigned char *data = malloc(total);
    char path[] = "/tmp/fio-c-test-XXXXXX";
    int fd = mkstemp(path);
    char state[32], sha[65], want[65];
    char *comment_id = NULL;

    for (i = 0; i < total; i++) data[i] = (unsigned char)(i * 131u + (i >> 13));
    CHECK_TRUE(fd >= 0 && write(fd, data, total) == (ssize_t)total);

    fio_asset_params_init(&params);
    params.name = "C001.mp4";
    params.filetype = "video/mp4";
    params.realtime = true;
    params.has_offset = true;
    params.offset = 5;
    params.has_channel = true;
    params.channel = 0;
    OK(fio_asset_create(client, &params, &asset));
    if (asset == NULL) {
        free(data);
        fio_client_free(client);
        return;
    }
    CHECK_TRUE(fio_asset_is_realtime(asset));
    CHECK_TRUE(fio_asset_upload_url_count(asset) == 0);
    CHECK_TRUE(strcmp(fio_asset_name(asset), "C001.mp4") == 0);

    /* Part 1 from a buffer, with progress. */
    spec.number = 1;
    spec.size = 5 * MIB;
    spec.is_final = false;
    OK(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, FIO_SIZE_NONE, &urls));
    CHECK_TRUE(fio_url_list_len(urls) == 1);
    CHECK_TRUE(fio_url_list_get(urls, 1) == NULL);
    progress_bytes = 0;
    CHECK_STATUS(fio_put_part(client, fio_url_list_get(urls, 0), data, 5 * MIB, "video/mp4", cancel_progress, NULL),
                 FIO_ERR_CANCELLED);
    OK(fio_put_part(client, fio_url_list_get(urls, 0), data, 5 * MIB, "video/mp4", on_progress, NULL));
    CHECK_TRUE(progress_bytes == (int)(5 * MIB));
    fio_url_list_free(urls);

    /* Final part from the fd. */
    spec.number = 2;
    spec.size = total - 5 * MIB;
    spec.is_final = true;
    OK(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, total, &urls));
    OK(fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, 5 * MIB, total - 5 * MIB, "video/mp4", NULL, NULL));
    fio_url_list_free(urls);

    asset_state(fio_asset_id(asset), state, sizeof state, sha, sizeof sha);
    sha256_of_file(path, want);
    CHECK_TRUE(strcmp(state, "uploaded") == 0);
    CHECK_TRUE(strlen(want) == 64 && strcmp(sha, want) == 0);

    OK(fio_comment_create(client, fio_asset_id(asset), "Nice shot", 24.0, &comment_id));
    CHECK_TRUE(comment_id != NULL && strlen(comment_id) > 0);
    fio_string_free(comment_id);
    OK(fio_comment_create(client, fio_asset_id(asset), "Whole clip", -1.0, NULL));
    CHECK_STATUS(fio_comment_create(client, "00000000-0000-0000-0000-000000000000", "x", -1.0, NULL), FIO_ERR_NOT_FOUND);
    CHECK_TRUE(fio_last_http_status() == 404);

    fio_asset_free(asset);
    close(fd);
    unlink(path);
    free(data);
    fio_client_free(client);
}

static void test_basic_upload(void) {
    fio_client *client = paired_client("unit-c-basic");
    fio_asset_params params;
    fio_asset *asset = NULL;
    size_t total = 3 * MIB + 17, n, i, chunk;
    unsigned char *data = malloc(total);
    char state[32], sha[65];

    for (i = 0; i < total; i++) data[i] = (unsigned char)(i ^ (i >> 8));
    fio_asset_params_init(&params);
    params.name = "basic.mov";
    params.filetype = "video/quicktime";
    params.filesize = total;
    params.has_offset = true;
    params.offset = 0;
    OK(fio_asset_create(client, &params, &asset));
    if (asset != NULL) {
        n = fio_asset_upload_url_count(asset);
        CHECK_TRUE(n >= 1);
        chunk = (total + n - 1) / n;
        for (i = 0; i < n; i++) {
            size_t off = i * chunk, len = total - off < chunk ? total - off : chunk;
            OK(fio_put_part(client, fio_asset_upload_url(asset, i), data + off, len, "video/quicktime", NULL, NULL));
        }
        CHECK_TRUE(fio_asset_upload_url(asset, n) == NULL);
        asset_state(fio_asset_id(asset), state, sizeof state, sha, sizeof sha);
        CHECK_TRUE(strcmp(state, "uploaded") == 0);
        fio_asset_free(asset);
    }
    free(data);
    fio_client_free(client);
}

static void test_bad_arguments_send_nothing(void) {
    fio_client *client = paired_client("unit-c-badargs");
    fio_asset_params params;
    fio_asset *asset = NULL;
    fio_url_list *urls = NULL;
    fio_part_spec spec;
    const char *id;

    fio_asset_params_init(&params);
    params.extension = ".mp4";
    params.filetype = "video/mp4";
    params.realtime = true;
    OK(fio_asset_create(client, &params, &asset));
    if (asset == NULL) {
        fio_client_free(client);
        return;
    }
    id = fio_asset_id(asset);
    clear_requests();

    spec.number = 0; spec.size = 5 * MIB; spec.is_final = false;
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_INVALID_ARGUMENT);
    spec.number = 10001;
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_INVALID_ARGUMENT);
    spec.number = 1; spec.size = 5 * MIB - 1;
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_INVALID_ARGUMENT);
    spec.size = 100; spec.is_final = true;
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, 5ull * 1024 * 1024 * 1024 * 1024 + 1, &urls),
                 FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_register_parts(client, id, &spec, 0, NULL, 100, &urls), FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_register_parts(client, id, NULL, 1, NULL, 100, &urls), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_register_parts(client, "\xc3\x28", &spec, 1, NULL, 100, &urls), FIO_ERR_BAD_UTF8);
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, "\xff", 100, &urls), FIO_ERR_BAD_UTF8);
    CHECK_STATUS(fio_register_parts(client, id, &spec, 1, NULL, 100, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_TRUE(urls == NULL);
    CHECK_STATUS(fio_put_part(client, "ftp://x", (const uint8_t *)"x", 1, "video/mp4", NULL, NULL),
                 FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_put_part(client, "http://127.0.0.1:1/x", NULL, 5, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    CHECK_STATUS(fio_put_part_fd(client, "http://127.0.0.1:1/x", -1, 0, 5, "video/mp4", NULL, NULL),
                 FIO_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(fio_comment_create(client, id, "", -1.0, NULL), FIO_ERR_INVALID_ARGUMENT);
    params.extension = "mp4";
    CHECK_STATUS(fio_asset_create(client, &params, &asset), FIO_ERR_INVALID_ARGUMENT);
    params.extension = NULL;
    params.filetype = NULL;
    CHECK_STATUS(fio_asset_create(client, &params, &asset), FIO_ERR_NULL_ARGUMENT);
    CHECK_TRUE(count_requests() == 0);

    fio_asset_free(asset);
    fio_client_free(client);
}

static void test_error_bodies(void) {
    fio_client *client = paired_client("unit-c-errors");
    char *json = NULL;
    char msg[512];

    http("POST", "/_emulator/faults",
         "{\"target\":\"api\",\"path_prefix\":\"/v2/devices/me\",\"count\":10,\"status\":502,"
         "\"body\":\"<html><body><h1>502 Bad Gateway</h1></body></html>\"}",
         NULL, 0);
    CHECK_STATUS(fio_device_info(client, &json), FIO_ERR_SERVER_ERROR);
    CHECK_TRUE(json == NULL);
    CHECK_TRUE(fio_last_http_status() == 502);
    CHECK_TRUE(fio_last_error_retryable());
    fio_last_error_message(msg, sizeof msg);
    CHECK_TRUE(strstr(msg, "HTML") != NULL);
    http("DELETE", "/_emulator/faults", NULL, NULL, 0);

    http("POST", "/_emulator/faults",
         "{\"target\":\"api\",\"path_prefix\":\"/v2/devices/me\",\"count\":1,\"status\":200,"
         "\"headers\":{\"content-type\":\"application/json\"},\"body\":\"{\\\"id\\\": \"}", NULL, 0);
    CHECK_STATUS(fio_device_info(client, &json), FIO_ERR_PROTOCOL);
    fio_last_error_message(msg, sizeof msg);
    CHECK_TRUE(strstr(msg, "malformed JSON") != NULL);

    http("POST", "/_emulator/faults",
         "{\"target\":\"api\",\"path_prefix\":\"/v2/devices/heartbeat\",\"count\":1,\"status\":503}", NULL, 0);
    OK(fio_heartbeat(client)); /* retried */
    fio_client_free(client);
}

static void test_refresh_and_revoke(void) {
    fio_client *client = paired_client("unit-c-refresh");
    char *json = NULL;
    OK(fio_client_refresh(client));
    http("POST", "/_emulator/tokens/expire", "{}", NULL, 0);
    OK(fio_device_info(client, &json)); /* 401 -> refresh -> retry */
    fio_string_free(json);
    json = NULL;
    OK(fio_client_revoke(client));
    CHECK_STATUS(fio_device_info(client, &json), FIO_ERR_PAIRING_REQUIRED);
    CHECK_STATUS(fio_client_refresh(client), FIO_ERR_PAIRING_REQUIRED);
    CHECK_STATUS(fio_client_revoke(client), FIO_ERR_PAIRING_REQUIRED);
    fio_client_free(client);
}

static void *thread_work(void *arg) {
    fio_client *client = (fio_client *)arg;
    int i;
    for (i = 0; i < 5; i++) {
        char *json = NULL;
        if (fio_heartbeat(client) != FIO_OK) return (void *)1;
        if (fio_device_info(client, &json) != FIO_OK) return (void *)1;
        fio_string_free(json);
    }
    return NULL;
}

static void test_threads_share_a_client(void) {
    fio_client *client = paired_client("unit-c-threads");
    pthread_t t[4];
    int i;
    http("POST", "/_emulator/tokens/expire", "{}", NULL, 0); /* all threads race into one refresh */
    for (i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_work, client);
    for (i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        CHECK_TRUE(r == NULL);
    }
    fio_client_free(client);
}

static void test_url_expired_and_short_file(void) {
    fio_client *client = paired_client("unit-c-urlexp");
    fio_asset_params params;
    fio_asset *asset = NULL;
    fio_url_list *urls = NULL;
    fio_part_spec spec;
    char url[4096], *sig;
    char path[] = "/tmp/fio-c-short-XXXXXX";
    int fd = mkstemp(path);

    CHECK_TRUE(fd >= 0 && write(fd, "0123456789", 10) == 10);
    fio_asset_params_init(&params);
    params.name = "exp.mp4";
    params.filetype = "video/mp4";
    params.realtime = true;
    OK(fio_asset_create(client, &params, &asset));
    spec.number = 1;
    spec.size = 100;
    spec.is_final = true;
    OK(fio_register_parts(client, asset ? fio_asset_id(asset) : "x", &spec, 1, NULL, 100, &urls));
    if (urls != NULL) {
        snprintf(url, sizeof url, "%s", fio_url_list_get(urls, 0));
        sig = strstr(url, "X-Amz-Signature=");
        CHECK_TRUE(sig != NULL);
        if (sig != NULL) {
            sig += strlen("X-Amz-Signature=");
            *sig = *sig == '0' ? '1' : '0';
            clear_requests();
            CHECK_STATUS(fio_put_part(client, url, (const uint8_t *)"x", 1, "video/mp4", NULL, NULL), FIO_ERR_URL_EXPIRED);
            CHECK_TRUE(fio_last_http_status() == 403);
            CHECK_TRUE(!fio_last_error_retryable());
            CHECK_TRUE(count_requests() == 1);
        }
        /* The file holds 10 bytes, the part wants 100: a local I/O error, not a hang. */
        CHECK_STATUS(fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, 0, 100, "video/mp4", NULL, NULL), FIO_ERR_IO);
        fio_url_list_free(urls);
    }
    fio_asset_free(asset);
    close(fd);
    unlink(path);
    fio_client_free(client);
}

int main(void) {
    const char *env = getenv("FIO_TEST_API");
    const char *colon;
    if (env == NULL) {
        fprintf(stderr, "FIO_TEST_API is not set (run through tests/c/run.sh)\n");
        return 2;
    }
    snprintf(api, sizeof api, "%s", env);
    colon = strrchr(api, ':');
    api_port = colon ? atoi(colon + 1) : 0;

    test_version_and_status();
    test_null_and_bad_args();
    test_pairing_flow();
    test_pairing_cancel_and_wrong_secret();
    test_device_and_heartbeat();
    test_realtime_parts_and_comments();
    test_basic_upload();
    test_bad_arguments_send_nothing();
    test_error_bodies();
    test_refresh_and_revoke();
    test_threads_share_a_client();
    test_url_expired_and_short_file();

    printf("C tests: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
