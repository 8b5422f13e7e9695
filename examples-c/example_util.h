/*
 * Helpers shared by the examples: a config from environment variables, the token file, error printing.
 *
 * Environment:
 *   FIO_CLIENT_ID       this unit's stable id (required)
 *   FIO_CLIENT_SECRET   the device model's secret (required)
 *   FIO_BASE_URL        API base URL (default https://api.frame.io)
 *   FIO_CLIENT_VERSION  firmware version, semver (default 1.0.0)
 *   FIO_CA_PEM          path of an extra CA certificate (PEM) to trust besides the built-in roots
 *   FIO_ALLOW_HTTP      1 to allow plain http:// (the emulator only)
 *   FIO_LOG             log level 1 (errors) .. 5 (trace); unset = no log
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frameio_c2c.h"

/* Print the failed call, its status and the library's detail for this thread. */
static inline void print_error(const char *what, fio_status st) {
    char msg[1024];
    fio_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s (status %d)", what, fio_status_str(st), (int)st);
    if (fio_last_http_status() != 0) {
        fprintf(stderr, ", HTTP %u", (unsigned)fio_last_http_status());
    }
    fprintf(stderr, "\n  %s\n", msg);
}

#define CHECK(call)                                   \
    do {                                              \
        fio_status st_ = (call);                      \
        if (st_ != FIO_OK) {                          \
            print_error(#call, st_);                  \
            exit(1);                                  \
        }                                             \
    } while (0)

static inline void log_to_stderr(void *userdata, fio_log_level level, const char *message) {
    static const char *names[] = {"?", "error", "warn", "info", "debug", "trace"};
    (void)userdata;
    fprintf(stderr, "[fio %s] %s\n", names[level >= 1 && level <= 5 ? level : 0], message);
}

/* Write the tokens atomically (temp file, fsync, rename), mode 0600: refresh tokens are single-use, so a
 * lost pair means pairing again. */
static inline int save_tokens(const char *path, const char *access, const char *refresh, uint64_t expires_at) {
    char tmp[4096];
    int fd;
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(tmp);
        return -1;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    fprintf(f, "%s\n%s\n%llu\n", access, refresh, (unsigned long long)expires_at);
    fflush(f);
    fsync(fd);
    fclose(f);
    if (rename(tmp, path) != 0) {
        perror("rename");
        return -1;
    }
    return 0;
}

/* Token callback: userdata is the token file path. */
static inline void on_tokens(void *userdata, const char *access, const char *refresh, uint64_t expires_at) {
    if (save_tokens((const char *)userdata, access, refresh, expires_at) != 0) {
        fprintf(stderr, "could not save tokens to %s\n", (const char *)userdata);
    }
}

/* Load the token file into the client. Returns 0 on success. */
static inline int load_tokens(fio_client *client, const char *path) {
    char access[8192], refresh[8192];
    unsigned long long expires_at = 0;
    FILE *f = fopen(path, "r");
    fio_status st;
    if (f == NULL) {
        fprintf(stderr, "cannot read %s: %s (run ./pair first)\n", path, strerror(errno));
        return -1;
    }
    if (fscanf(f, "%8191s %8191s %llu", access, refresh, &expires_at) < 2) {
        fclose(f);
        fprintf(stderr, "%s is not a token file\n", path);
        return -1;
    }
    fclose(f);
    st = fio_client_set_tokens(client, access, refresh, (uint64_t)expires_at);
    memset(access, 0, sizeof access);
    memset(refresh, 0, sizeof refresh);
    if (st != FIO_OK) {
        print_error("fio_client_set_tokens", st);
        return -1;
    }
    return 0;
}

static inline char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* A client configured from the environment; `token_file` (may be NULL) receives every new token pair. */
static inline fio_client *client_from_env(const char *token_file) {
    const char *id = getenv("FIO_CLIENT_ID");
    const char *secret = getenv("FIO_CLIENT_SECRET");
    const char *base = getenv("FIO_BASE_URL");
    const char *version = getenv("FIO_CLIENT_VERSION");
    const char *ca = getenv("FIO_CA_PEM");
    const char *allow_http = getenv("FIO_ALLOW_HTTP");
    const char *log = getenv("FIO_LOG");
    fio_config *cfg;
    fio_client *client = NULL;
    if (id == NULL || secret == NULL) {
        fprintf(stderr, "set FIO_CLIENT_ID and FIO_CLIENT_SECRET (and FIO_BASE_URL for the emulator)\n");
        exit(2);
    }
    cfg = fio_config_new();
    if (allow_http != NULL && strcmp(allow_http, "1") == 0) CHECK(fio_config_set_allow_http(cfg, true));
    if (base != NULL) CHECK(fio_config_set_base_url(cfg, base));
    CHECK(fio_config_set_client_id(cfg, id));
    CHECK(fio_config_set_client_secret(cfg, secret));
    CHECK(fio_config_set_client_version(cfg, version != NULL ? version : "1.0.0"));
    CHECK(fio_config_set_url_pairing(cfg, true));
    if (ca != NULL) {
        size_t len = 0;
        char *pem = read_file(ca, &len);
        if (pem == NULL) {
            fprintf(stderr, "cannot read CA file %s\n", ca);
            exit(2);
        }
        CHECK(fio_config_set_extra_ca_pem(cfg, (const uint8_t *)pem, len));
        free(pem);
    }
    if (log != NULL) CHECK(fio_config_set_log_callback(cfg, atoi(log), log_to_stderr, NULL));
    if (token_file != NULL) CHECK(fio_config_set_token_callback(cfg, on_tokens, (void *)token_file));
    CHECK(fio_client_new(cfg, &client));
    fio_config_free(cfg); /* the client keeps a copy */
    return client;
}

#endif
