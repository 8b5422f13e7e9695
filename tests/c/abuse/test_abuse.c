/*
 * The C boundary under abuse (issue 5): every exported function with NULL for each pointer, bad UTF-8
 * for each string, zero and huge sizes, calls in the wrong order, double cancel, free(NULL), and one
 * client shared by 8 threads calling at once. Each failing call must return a status with a message
 * (fio_last_error_*); nothing may crash, leak (valgrind, LeakSanitizer) or race (ThreadSanitizer).
 *
 * Runs against a fio-emulator started by ../run.sh with --auto-approve (FIO_TEST_API). Built with
 * -Wall -Wextra -Werror; plain, ASan, TSan and valgrind (see Makefile).
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frameio_c2c.h"

#define SECRET "fio-emulator-secret"
#define BAD "\xc3\x28"        /* invalid UTF-8 */
#define NTHREADS 8
#define ITERATIONS 4

static int failures = 0;
static int checks = 0;
static const char *api = NULL;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED);                                      \
        if (!(cond)) {                                                                         \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                                      \
    } while (0)

/* A failing call: the expected status, fio_last_error_status agrees, and a non-empty message. */
static void expect_err_at(fio_status got, fio_status want, const char *call, int line) {
    char msg[1024];
    fio_status r = fio_last_error_message(msg, sizeof msg);
    __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED);
    if (got != want || fio_last_error_status() != got || fio_last_error_length() == 0 ||
        (r != FIO_OK && r != FIO_ERR_BUFFER_TOO_SMALL) || msg[0] == 0 ||
        strcmp(fio_status_str(got), "unknown status") == 0) {
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s); last status %d, message \"%s\"\n", __FILE__, line, call,
                (int)got, fio_status_str(got), (int)want, fio_status_str(want), (int)fio_last_error_status(), msg);
    }
}
#define EXPECT_ERR(call, want) expect_err_at((call), (want), #call, __LINE__)

static void expect_ok_at(fio_status got, const char *call, int line) {
    __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED);
    if (got != FIO_OK) {
        char msg[1024];
        fio_last_error_message(msg, sizeof msg);
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        fprintf(stderr, "%s:%d: %s = %d (%s): %s\n", __FILE__, line, call, (int)got, fio_status_str(got), msg);
    }
}
#define OK(call) expect_ok_at((call), #call, __LINE__)

/* Any status is fine as long as it is a real code with its text (for calls whose outcome depends on timing). */
static void expect_status_at(fio_status got, const char *call, int line) {
    __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED);
    if (got < 0 || got > FIO_ERR_HTTP_STATUS || strcmp(fio_status_str(got), "unknown status") == 0) {
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        fprintf(stderr, "%s:%d: %s = %d: not a status\n", __FILE__, line, call, (int)got);
    }
}
#define ANY_STATUS(call) expect_status_at((call), #call, __LINE__)

static int log_lines = 0;
static int token_calls = 0;

static void on_log(void *ud, fio_log_level level, const char *message) {
    (void)ud;
    (void)level;
    if (message != NULL && message[0] != 0) __atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
}

static void on_tokens(void *ud, const char *a, const char *r, uint64_t exp) {
    (void)ud;
    (void)exp;
    if (a != NULL && r != NULL) __atomic_add_fetch(&token_calls, 1, __ATOMIC_RELAXED);
}

static fio_config *config(const char *client_id) {
    fio_config *c = fio_config_new();
    CHECK(c != NULL);
    OK(fio_config_set_allow_http(c, true));
    OK(fio_config_set_base_url(c, api));
    OK(fio_config_set_client_id(c, client_id));
    OK(fio_config_set_client_secret(c, SECRET));
    OK(fio_config_set_client_version(c, "1.2.3"));
    OK(fio_config_set_retry(c, 3, 20, 100, 20000));
    return c;
}

static fio_client *paired_client(const char *client_id) {
    fio_config *c = config(client_id);
    fio_client *client = NULL;
    fio_pairing *p = NULL;
    OK(fio_config_set_log_callback(c, FIO_LOG_TRACE, on_log, NULL));
    OK(fio_config_set_token_callback(c, on_tokens, NULL));
    OK(fio_client_new(c, &client));
    fio_config_free(c);
    if (client == NULL) return NULL;
    OK(fio_pairing_start(client, &p)); /* the emulator auto-approves */
    OK(fio_pairing_wait(client, p));
    fio_pairing_free(p);
    return client;
}

/* ---------------------------------------------------------------------------------------------------- */

static void test_static_and_last_error(void) {
    char buf[8];
    CHECK(fio_version() != NULL && strlen(fio_version()) >= 5);
    CHECK(strcmp(fio_status_str(FIO_OK), "ok") == 0);
    CHECK(strcmp(fio_status_str(-1), "unknown status") == 0);
    CHECK(strcmp(fio_status_str(INT_MIN), "unknown status") == 0);
    CHECK(strcmp(fio_status_str(INT_MAX), "unknown status") == 0);
    for (int s = 1; s <= FIO_ERR_HTTP_STATUS; s++) CHECK(strcmp(fio_status_str(s), "unknown status") != 0);
    EXPECT_ERR(fio_config_set_client_id(NULL, "x"), FIO_ERR_NULL_ARGUMENT);
    /* the last-error getters with NULL / zero-sized buffers */
    CHECK(fio_last_error_message(NULL, 0) == FIO_ERR_BUFFER_TOO_SMALL);
    CHECK(fio_last_error_message(NULL, 16) == FIO_ERR_NULL_ARGUMENT);
    CHECK(fio_last_error_message(buf, 0) == FIO_ERR_BUFFER_TOO_SMALL);
    CHECK(fio_last_error_message(buf, 1) == FIO_ERR_BUFFER_TOO_SMALL && buf[0] == 0);
    CHECK(fio_last_error_message(buf, sizeof buf) == FIO_ERR_BUFFER_TOO_SMALL && strlen(buf) == sizeof buf - 1);
    CHECK(fio_last_server_code(NULL, 4) == FIO_ERR_NULL_ARGUMENT);
    CHECK(fio_last_server_code(buf, sizeof buf) == FIO_OK);
    CHECK(fio_last_http_status() == 0);
    CHECK(!fio_last_error_retryable());
    /* the getters do not reset the last error */
    CHECK(fio_last_error_status() == FIO_ERR_NULL_ARGUMENT);
}

static void test_free_null_and_accessors_null(void) {
    fio_string_free(NULL);
    fio_config_free(NULL);
    fio_client_free(NULL);
    fio_pairing_free(NULL);
    fio_asset_free(NULL);
    fio_url_list_free(NULL);
    fio_upload_options_free(NULL);
    fio_upload_free(NULL);
    fio_pairing_cancel(NULL);
    fio_pairing_cancel(NULL);
    fio_upload_cancel(NULL);
    fio_upload_cancel(NULL);
    fio_asset_params_init(NULL);
    CHECK(fio_asset_id(NULL) == NULL);
    CHECK(fio_asset_name(NULL) == NULL);
    CHECK(!fio_asset_is_realtime(NULL));
    CHECK(fio_asset_upload_url_count(NULL) == 0);
    CHECK(fio_asset_upload_url(NULL, 0) == NULL);
    CHECK(fio_asset_upload_url(NULL, SIZE_MAX) == NULL);
    CHECK(fio_url_list_len(NULL) == 0);
    CHECK(fio_url_list_get(NULL, 0) == NULL);
    CHECK(fio_pairing_user_code(NULL) == NULL);
    CHECK(fio_pairing_verification_uri(NULL) == NULL);
    CHECK(fio_pairing_verification_uri_complete(NULL) == NULL);
    CHECK(fio_pairing_name(NULL) == NULL);
    CHECK(fio_pairing_expires_in(NULL) == 0);
    CHECK(fio_pairing_remaining(NULL) == 0);
    CHECK(fio_pairing_interval_ms(NULL) == 0);
    CHECK(fio_upload_asset_id(NULL) == NULL);
    CHECK(fio_upload_resume_offset(NULL) == 0);
    CHECK(fio_upload_part_count(NULL) == 0);
}

static void test_config_abuse(void) {
    fio_config *c = fio_config_new();
    fio_client *client = NULL;
    const char pem[] = "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n";
    CHECK(c != NULL);
    /* NULL for each pointer */
    EXPECT_ERR(fio_config_set_base_url(NULL, "https://x"), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_base_url(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_id(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_secret(NULL, "s"), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_secret(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_version(NULL, "1.0.0"), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_version(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_scope(NULL, "offline"), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_scope(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_url_pairing(NULL, true), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_timeouts(NULL, 1, 1, 1, 1, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_retry(NULL, 1, 1, 1, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_extra_ca_pem(NULL, (const uint8_t *)pem, sizeof pem), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_extra_ca_pem(c, NULL, 10), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_proxy(NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_allow_http(NULL, true), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_refresh_margin(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_max_idle_connections(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_expect_continue(NULL, true), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_log_callback(NULL, FIO_LOG_INFO, on_log, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_config_set_token_callback(NULL, on_tokens, NULL), FIO_ERR_NULL_ARGUMENT);
    /* bad UTF-8 for each string */
    EXPECT_ERR(fio_config_set_base_url(c, "https://" BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_config_set_client_id(c, BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_config_set_client_secret(c, BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_config_set_client_version(c, BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_config_set_scope(c, BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_config_set_proxy(c, "http://" BAD), FIO_ERR_BAD_UTF8);
    /* empty and malformed values */
    EXPECT_ERR(fio_config_set_client_id(c, ""), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_secret(c, ""), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_client_version(c, "1.2"), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_base_url(c, "ftp://x"), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_base_url(c, "http://"), FIO_ERR_INVALID_ARGUMENT); /* no host */
    EXPECT_ERR(fio_config_set_proxy(c, "gopher://x"), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_retry(c, 0, 1, 1, 1), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_max_idle_connections(c, 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_log_callback(c, 0, on_log, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_log_callback(c, 6, on_log, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_log_callback(c, -1, on_log, NULL), FIO_ERR_INVALID_ARGUMENT);
    /* zero and huge sizes */
    EXPECT_ERR(fio_config_set_extra_ca_pem(c, (const uint8_t *)pem, 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_config_set_extra_ca_pem(c, (const uint8_t *)pem, SIZE_MAX), FIO_ERR_INVALID_ARGUMENT);
    OK(fio_config_set_timeouts(c, 0, 0, 0, 0, 0));
    OK(fio_config_set_timeouts(c, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX));
    OK(fio_config_set_retry(c, UINT32_MAX, UINT32_MAX, 0, UINT32_MAX));
    OK(fio_config_set_refresh_margin(c, UINT32_MAX));
    OK(fio_config_set_max_idle_connections(c, UINT32_MAX));
    OK(fio_config_set_proxy(c, NULL));
    OK(fio_config_set_log_callback(c, FIO_LOG_TRACE, NULL, NULL));
    OK(fio_config_set_token_callback(c, NULL, NULL));
    /* client_new: NULLs, then a config that is not complete, then a garbage CA */
    EXPECT_ERR(fio_client_new(NULL, &client), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_new(c, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_new(c, &client), FIO_ERR_INVALID_ARGUMENT); /* no client id / secret */
    CHECK(client == NULL);
    OK(fio_config_set_client_id(c, "unit-abuse"));
    OK(fio_config_set_client_secret(c, SECRET));
    OK(fio_config_set_extra_ca_pem(c, (const uint8_t *)pem, sizeof pem - 1));
    EXPECT_ERR(fio_client_new(c, &client), FIO_ERR_INVALID_ARGUMENT);
    CHECK(client == NULL);
    fio_config_free(c);
}

static void test_client_abuse(fio_client *client) {
    fio_client *unpaired = NULL;
    fio_config *c = config("unit-unpaired");
    fio_pairing *p = NULL;
    fio_asset *asset = NULL;
    fio_url_list *urls = NULL;
    fio_asset_params params;
    fio_part_spec spec = {1, 1024, true};
    char *s = NULL, *a = NULL, *r = NULL;
    uint64_t exp = 0;
    static uint8_t data[1024];
    char path[] = "/tmp/fio-abuse-XXXXXX";
    int fd;

    OK(fio_client_new(c, &unpaired));
    fio_config_free(c);

    /* tokens */
    EXPECT_ERR(fio_client_set_tokens(NULL, "a", "r", 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_set_tokens(unpaired, NULL, "r", 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_set_tokens(unpaired, "a", NULL, 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_set_tokens(unpaired, BAD, "r", 0), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_client_set_tokens(unpaired, "a", BAD, 0), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_client_set_tokens(unpaired, "", "r", 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_client_get_tokens(NULL, &a, &r, &exp), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_get_tokens(unpaired, NULL, &r, &exp), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_get_tokens(unpaired, &a, NULL, &exp), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_client_clear_tokens(NULL), FIO_ERR_NULL_ARGUMENT);
    /* wrong order: nothing before pairing */
    EXPECT_ERR(fio_client_get_tokens(unpaired, &a, &r, &exp), FIO_ERR_PAIRING_REQUIRED);
    CHECK(a == NULL && r == NULL); /* out-params untouched on error */
    EXPECT_ERR(fio_client_refresh(unpaired), FIO_ERR_PAIRING_REQUIRED);
    EXPECT_ERR(fio_client_revoke(unpaired), FIO_ERR_PAIRING_REQUIRED);
    EXPECT_ERR(fio_device_info(unpaired, &s), FIO_ERR_PAIRING_REQUIRED);
    CHECK(s == NULL);
    EXPECT_ERR(fio_heartbeat(unpaired), FIO_ERR_PAIRING_REQUIRED);
    OK(fio_heartbeat_stop(unpaired)); /* not running: no-op */
    OK(fio_client_clear_tokens(unpaired));
    OK(fio_client_get_tokens(client, &a, &r, NULL));
    fio_string_free(a);
    fio_string_free(r);

    /* pairing */
    EXPECT_ERR(fio_pairing_start(NULL, &p), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_pairing_start(unpaired, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_pairing_poll(NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_pairing_poll(unpaired, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_pairing_wait(unpaired, NULL), FIO_ERR_NULL_ARGUMENT);
    OK(fio_pairing_start(unpaired, &p));
    EXPECT_ERR(fio_pairing_poll(NULL, p), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_pairing_wait(NULL, p), FIO_ERR_NULL_ARGUMENT);
    fio_pairing_cancel(p);
    fio_pairing_cancel(p); /* double cancel */
    EXPECT_ERR(fio_pairing_wait(unpaired, p), FIO_ERR_CANCELLED);
    EXPECT_ERR(fio_pairing_poll(unpaired, p), FIO_ERR_CANCELLED);
    fio_pairing_free(p);

    /* device */
    EXPECT_ERR(fio_device_info(NULL, &s), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_device_info(client, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_heartbeat(NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_heartbeat_start(NULL, 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_heartbeat_stop(NULL), FIO_ERR_NULL_ARGUMENT);
    OK(fio_heartbeat_start(client, UINT32_MAX)); /* clamped */
    OK(fio_heartbeat_start(client, 0));
    OK(fio_heartbeat_stop(client));
    OK(fio_heartbeat_stop(client)); /* twice */

    /* assets */
    fio_asset_params_init(&params);
    EXPECT_ERR(fio_asset_create(NULL, &params, &asset), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_asset_create(client, NULL, &asset), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_asset_create(client, &params, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_asset_create(client, &params, &asset), FIO_ERR_NULL_ARGUMENT); /* filetype NULL */
    params.filetype = BAD;
    params.name = "a.mp4";
    EXPECT_ERR(fio_asset_create(client, &params, &asset), FIO_ERR_BAD_UTF8);
    params.filetype = "video/mp4";
    params.name = "a" BAD ".mp4";
    EXPECT_ERR(fio_asset_create(client, &params, &asset), FIO_ERR_BAD_UTF8);
    params.name = "a.mp4";
    params.extension = BAD;
    params.realtime = true;
    EXPECT_ERR(fio_asset_create(client, &params, &asset), FIO_ERR_BAD_UTF8);
    params.extension = NULL;
    params.realtime = false;
    params.filesize = UINT64_MAX;
    EXPECT_ERR(fio_asset_create(client, &params, &asset), FIO_ERR_INVALID_ARGUMENT);
    CHECK(asset == NULL);
    params.realtime = true;
    params.filesize = 0;
    OK(fio_asset_create(client, &params, &asset));
    CHECK(fio_asset_upload_url(asset, SIZE_MAX) == NULL);

    /* comments */
    EXPECT_ERR(fio_comment_create(NULL, "a", "t", -1.0, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_comment_create(client, NULL, "t", -1.0, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_comment_create(client, fio_asset_id(asset), NULL, -1.0, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_comment_create(client, BAD, "t", -1.0, NULL), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_comment_create(client, fio_asset_id(asset), BAD, -1.0, NULL), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_comment_create(client, fio_asset_id(asset), "", -1.0, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_comment_create(client, "../../x", "t", -1.0, NULL), FIO_ERR_INVALID_ARGUMENT);
    ANY_STATUS(fio_comment_create(client, fio_asset_id(asset), "nan", NAN, NULL));
    ANY_STATUS(fio_comment_create(client, fio_asset_id(asset), "inf", INFINITY, &s));
    if (s != NULL) fio_string_free(s);
    s = NULL;

    /* parts */
    EXPECT_ERR(fio_register_parts(NULL, "a", &spec, 1, NULL, 1024, &urls), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, NULL, &spec, 1, NULL, 1024, &urls), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), NULL, 1, NULL, 1024, &urls), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, 1024, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, BAD, &spec, 1, NULL, 1024, &urls), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, 1, BAD, 1024, &urls), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, 0, NULL, 1024, &urls), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, SIZE_MAX, NULL, 1024, &urls), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, FIO_SIZE_NONE, &urls), FIO_ERR_INVALID_ARGUMENT);
    {
        fio_part_spec huge = {1, UINT64_MAX, true};
        fio_part_spec zero = {0, 1024, true};
        EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &huge, 1, NULL, UINT64_MAX - 1, &urls), FIO_ERR_INVALID_ARGUMENT);
        EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &zero, 1, NULL, 1024, &urls), FIO_ERR_INVALID_ARGUMENT);
    }
    CHECK(urls == NULL);
    OK(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, 1024, &urls));
    CHECK(fio_url_list_len(urls) == 1);
    CHECK(fio_url_list_get(urls, 1) == NULL && fio_url_list_get(urls, SIZE_MAX) == NULL);

    /* part PUTs */
    EXPECT_ERR(fio_put_part(NULL, "u", data, 1, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, NULL, data, 1, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, fio_url_list_get(urls, 0), NULL, 1, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, fio_url_list_get(urls, 0), data, 1, NULL, NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, "http://127.0.0.1:1/" BAD, data, 1, "video/mp4", NULL, NULL), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_put_part(client, fio_url_list_get(urls, 0), data, 1, BAD, NULL, NULL), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_put_part(client, fio_url_list_get(urls, 0), data, SIZE_MAX, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, fio_url_list_get(urls, 0), data, (size_t)1 << 40, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, "not a url", data, 1, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part(client, "http://127.0.0.1:1/x y", data, 1, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(NULL, "u", 0, 0, 1, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, NULL, 0, 0, 1, "video/mp4", NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), 0, 0, 1, NULL, NULL, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), -1, 0, 1, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), INT_MIN, 0, 1, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, data, 100) == 100);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, 0, UINT64_MAX, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, UINT64_MAX, 1024, "video/mp4", NULL, NULL), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, 0, 1024, "video/mp4", NULL, NULL), FIO_ERR_IO); /* short */
    close(fd);
    unlink(path);
    OK(fio_put_part(client, fio_url_list_get(urls, 0), data, sizeof data, "video/mp4", NULL, NULL));
    /* the asset is complete: registering again is refused by the server (wrong order) */
    EXPECT_ERR(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, 1024, &urls), FIO_ERR_BAD_REQUEST);
    fio_url_list_free(urls);
    fio_asset_free(asset);

    fio_client_free(unpaired);
}

/* ---------------------------------------------------------------------------------------------------- */

static int cancel_on_progress(void *ud, const fio_progress *p) {
    (void)ud;
    (void)p;
    return 1;
}

static void test_upload_abuse(fio_client *client) {
    fio_upload_options *o = fio_upload_options_new();
    fio_upload *u = NULL;
    fio_asset_params params;
    fio_progress stats;
    fio_upload_part part;
    static uint8_t data[1 << 20];
    char dir[] = "/tmp/fio-abuse-dir-XXXXXX";
    char file[256], state[256];
    FILE *f;

    CHECK(o != NULL);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(file, sizeof file, "%s/rec.mov", dir);
    snprintf(state, sizeof state, "%s/rec.state", dir);
    fio_asset_params_init(&params);
    params.name = "abuse.mov";
    params.filetype = "video/quicktime";

    /* options: NULLs, bad values, extremes */
    EXPECT_ERR(fio_upload_options_set_concurrency(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_concurrency(o, 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_concurrency(o, UINT32_MAX), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_buffer_budget(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_buffer_budget(o, 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_part_sizes(NULL, 0, 0, 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_part_sizes(o, 1, 0, 0), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_part_sizes(o, UINT64_MAX, UINT64_MAX, UINT64_MAX), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_bandwidth_limit(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_retry(NULL, 1, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_progress(NULL, cancel_on_progress, NULL, 0), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_state_file(NULL, state), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_state_file(o, BAD), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_upload_options_set_watch_interval(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_final_name(NULL, "x.mov"), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_options_set_final_name(o, BAD), FIO_ERR_BAD_UTF8);
    OK(fio_upload_options_set_bandwidth_limit(o, UINT64_MAX));
    OK(fio_upload_options_set_retry(o, UINT64_MAX, UINT32_MAX));
    OK(fio_upload_options_set_retry(o, 2000, 10));
    OK(fio_upload_options_set_watch_interval(o, UINT32_MAX));
    OK(fio_upload_options_set_watch_interval(o, 0));
    OK(fio_upload_options_set_state_file(o, NULL));
    OK(fio_upload_options_set_final_name(o, NULL));
    OK(fio_upload_options_set_progress(o, NULL, NULL, UINT32_MAX));
    OK(fio_upload_options_set_concurrency(o, 2));

    /* start / resume / file: NULLs, bad UTF-8, missing files */
    EXPECT_ERR(fio_upload_start(NULL, &params, NULL, o, &u), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_start(client, NULL, NULL, o, &u), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_start(client, &params, NULL, o, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_start(client, &params, BAD, o, &u), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_upload_start(client, &params, "/nonexistent/dir/rec.mov", o, &u), FIO_ERR_IO);
    CHECK(u == NULL);
    EXPECT_ERR(fio_upload_resume(NULL, state, o, &u), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_resume(client, NULL, o, &u), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_resume(client, state, o, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_resume(client, BAD, o, &u), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_upload_resume(client, state, o, &u), FIO_ERR_IO); /* missing */
    f = fopen(state, "w");
    fputs("{\"version\": 999, \"garbage\": [", f);
    fclose(f);
    EXPECT_ERR(fio_upload_resume(client, state, o, &u), FIO_ERR_IO); /* malformed */
    CHECK(u == NULL);
    EXPECT_ERR(fio_upload_file(NULL, &params, file, o, &stats), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_file(client, NULL, file, o, &stats), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_file(client, &params, NULL, o, &stats), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_file(client, &params, BAD, o, &stats), FIO_ERR_BAD_UTF8);
    EXPECT_ERR(fio_upload_file(client, &params, "/nonexistent/x.mov", o, &stats), FIO_ERR_IO);

    /* the upload's own functions with NULL */
    EXPECT_ERR(fio_upload_write(NULL, data, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_file_grew(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_finish(NULL, &stats), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_stats(NULL, &stats), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_status(NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_part_info(NULL, 0, &part), FIO_ERR_NULL_ARGUMENT);

    /* a pushed-bytes upload: wrong calls, huge sizes, double cancel, calls after cancel */
    OK(fio_upload_start(client, &params, NULL, o, &u));
    CHECK(u != NULL && fio_upload_asset_id(u) != NULL);
    EXPECT_ERR(fio_upload_write(u, NULL, 5), FIO_ERR_NULL_ARGUMENT);
    OK(fio_upload_write(u, NULL, 0));
    OK(fio_upload_write(u, data, 0));
    EXPECT_ERR(fio_upload_write(u, data, SIZE_MAX), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_file_grew(u, 100), FIO_ERR_WRONG_STATE);
    EXPECT_ERR(fio_upload_stats(u, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_part_info(u, 0, NULL), FIO_ERR_NULL_ARGUMENT);
    EXPECT_ERR(fio_upload_part_info(u, SIZE_MAX, &part), FIO_ERR_INVALID_ARGUMENT);
    EXPECT_ERR(fio_upload_set_bandwidth_limit(NULL, 1), FIO_ERR_NULL_ARGUMENT);
    OK(fio_upload_set_bandwidth_limit(u, 1)); /* 1 byte/s, then lifted again */
    OK(fio_upload_set_bandwidth_limit(u, UINT64_MAX));
    OK(fio_upload_set_bandwidth_limit(u, 0));
    OK(fio_upload_write(u, data, sizeof data));
    OK(fio_upload_stats(u, &stats));
    CHECK(stats.bytes_recorded == sizeof data);
    fio_upload_cancel(u);
    fio_upload_cancel(u); /* double cancel */
    EXPECT_ERR(fio_upload_write(u, data, 10), FIO_ERR_CANCELLED);
    EXPECT_ERR(fio_upload_finish(u, &stats), FIO_ERR_CANCELLED);
    EXPECT_ERR(fio_upload_finish(u, NULL), FIO_ERR_CANCELLED);
    EXPECT_ERR(fio_upload_status(u), FIO_ERR_CANCELLED);
    fio_upload_cancel(u);
    fio_upload_free(u);
    u = NULL;

    /* a file upload: write() is the wrong call; file_grew beyond the file; finish twice */
    f = fopen(file, "wb");
    CHECK(fwrite(data, 1, sizeof data, f) == sizeof data);
    fclose(f);
    OK(fio_upload_start(client, &params, file, o, &u));
    EXPECT_ERR(fio_upload_write(u, data, 10), FIO_ERR_WRONG_STATE);
    OK(fio_upload_file_grew(u, 10));
    OK(fio_upload_file_grew(u, 5)); /* shrinking reports are ignored */
    OK(fio_upload_finish(u, &stats));
    CHECK(stats.complete && stats.bytes_done == sizeof data);
    ANY_STATUS(fio_upload_finish(u, &stats)); /* a second finish */
    ANY_STATUS(fio_upload_write(u, data, 10));
    ANY_STATUS(fio_upload_file_grew(u, UINT64_MAX));
    OK(fio_upload_status(u));
    fio_upload_cancel(u); /* cancel after completion */
    fio_upload_cancel(u);
    OK(fio_upload_stats(u, &stats));
    CHECK(fio_upload_part_count(u) == 1);
    OK(fio_upload_part_info(u, 0, &part));
    CHECK(part.state == FIO_PART_DONE);
    fio_upload_free(u);
    u = NULL;

    /* a file upload told it grew to UINT64_MAX: it fails with a status, it does not crash or hang */
    OK(fio_upload_start(client, &params, file, o, &u));
    ANY_STATUS(fio_upload_file_grew(u, UINT64_MAX));
    ANY_STATUS(fio_upload_finish(u, &stats));
    CHECK(fio_upload_status(u) != FIO_OK || stats.complete);
    fio_upload_free(u);
    u = NULL;

    /* a progress callback that cancels at once */
    OK(fio_upload_options_set_progress(o, cancel_on_progress, NULL, 1));
    OK(fio_upload_start(client, &params, NULL, o, &u));
    usleep(300000); /* the monitor's first progress call (within ~10 ms) cancels */
    EXPECT_ERR(fio_upload_write(u, data, sizeof data), FIO_ERR_CANCELLED);
    EXPECT_ERR(fio_upload_finish(u, &stats), FIO_ERR_CANCELLED);
    fio_upload_free(u);

    fio_upload_options_free(o);
    unlink(file);
    unlink(state);
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------------------- */
/* One client, 8 threads, every kind of call at once. */

static void *hammer(void *arg) {
    fio_client *client = (fio_client *)arg;
    static uint8_t data[4096];
    for (int i = 0; i < ITERATIONS; i++) {
        char *s = NULL, *a = NULL, *r = NULL;
        char msg[256];
        fio_asset *asset = NULL;
        fio_url_list *urls = NULL;
        fio_asset_params params;
        fio_part_spec spec = {1, sizeof data, true};
        fio_asset_params_init(&params);
        params.name = "t.mp4";
        params.filetype = "video/mp4";
        params.realtime = true;
        OK(fio_device_info(client, &s));
        fio_string_free(s);
        OK(fio_heartbeat(client));
        OK(fio_asset_create(client, &params, &asset));
        if (asset != NULL) {
            OK(fio_register_parts(client, fio_asset_id(asset), &spec, 1, NULL, sizeof data, &urls));
            if (urls != NULL) OK(fio_put_part(client, fio_url_list_get(urls, 0), data, sizeof data, "video/mp4", NULL, NULL));
            OK(fio_comment_create(client, fio_asset_id(asset), "from a thread", 1.0, NULL));
            fio_url_list_free(urls);
            fio_asset_free(asset);
        }
        OK(fio_client_get_tokens(client, &a, &r, NULL));
        fio_string_free(a);
        fio_string_free(r);
        /* errors on this thread do not disturb the others' last error */
        EXPECT_ERR(fio_register_parts(client, BAD, &spec, 1, NULL, 1, &urls), FIO_ERR_BAD_UTF8);
        fio_last_error_message(msg, sizeof msg);
        CHECK(strstr(msg, "UTF-8") != NULL);
        if (i == 1) OK(fio_client_refresh(client)); /* refreshes race with calls on other threads */
    }
    return NULL;
}

static void test_threads(fio_client *client) {
    pthread_t t[NTHREADS];
    int before = __atomic_load_n(&token_calls, __ATOMIC_RELAXED);
    for (int i = 0; i < NTHREADS; i++) CHECK(pthread_create(&t[i], NULL, hammer, client) == 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    /* every refresh reached the token callback */
    CHECK(__atomic_load_n(&token_calls, __ATOMIC_RELAXED) > before);
}

int main(void) {
    fio_client *client;
    api = getenv("FIO_TEST_API");
    if (api == NULL) {
        fprintf(stderr, "FIO_TEST_API is not set (run through ../run.sh)\n");
        return 2;
    }
    test_static_and_last_error();
    test_free_null_and_accessors_null();
    test_config_abuse();
    client = paired_client("unit-abuse-main");
    CHECK(client != NULL);
    if (client != NULL) {
        test_client_abuse(client);
        test_upload_abuse(client);
        test_threads(client);
        fio_client_free(client);
    }
    CHECK(__atomic_load_n(&log_lines, __ATOMIC_RELAXED) > 0);
    printf("test_abuse: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
