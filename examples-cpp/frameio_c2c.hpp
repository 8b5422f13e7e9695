// frameio_c2c.hpp - small C++17 RAII wrappers over the frameio-c2c C API (frameio_c2c.h).
//
// Header-only, no dependency beyond the C library and the standard library. Copy it into your tree
// and adapt it: it is an example, not a second API. What it shows:
//
// - every handle is owned by exactly one C++ object (move-only) whose destructor calls the matching
//   fio_*_free, so no path (early return, exception) leaks a client, an asset or an upload;
// - strings returned through `char **` are taken over by fio::String (freed with fio_string_free);
// - a failed call throws fio::Error carrying the status, the thread's last error message and the
//   HTTP status, read right after the call (they are thread-local and reset by the next call);
// - callbacks (tokens, progress) are std::function objects owned by the object that registered
//   them, destroyed only after the C object that calls them; an exception never crosses into the C
//   library (the progress trampoline catches it and cancels the upload; fio::Upload::finish rethrows it).
//
// Built without exceptions (-fno-exceptions)? Use the handle types only (Config::get() and so on)
// and check the fio_status values yourself.

#ifndef FRAMEIO_C2C_HPP
#define FRAMEIO_C2C_HPP

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "frameio_c2c.h"

namespace fio {

/// A failed call: the status code, the library's message for this thread, the HTTP status (0: none).
class Error : public std::runtime_error {
public:
    Error(fio_status status, const std::string &what, std::string detail, uint16_t http_status, bool retryable)
        : std::runtime_error(what + ": " + fio_status_str(status) + (detail.empty() ? "" : " (" + detail + ")")),
          status_(status), detail_(std::move(detail)), http_status_(http_status), retryable_(retryable) {}
    fio_status status() const noexcept { return status_; }
    const std::string &detail() const noexcept { return detail_; }
    uint16_t http_status() const noexcept { return http_status_; }
    /// True when the same call may succeed later (network, timeout, 5xx, 429).
    bool retryable() const noexcept { return retryable_; }

private:
    fio_status status_;
    std::string detail_;
    uint16_t http_status_;
    bool retryable_;
};

/// The calling thread's last error message (empty if none).
inline std::string last_error_message() {
    std::string s(fio_last_error_length() + 1, '\0');
    fio_last_error_message(&s[0], s.size());
    s.resize(std::strlen(s.c_str()));
    return s;
}

/// The error for a failed call, with the thread's detail. Build it right after the C call: the next
/// status-returning call resets the detail.
inline Error error_for(fio_status status, const char *what) {
    return Error(status, what, last_error_message(), fio_last_http_status(), fio_last_error_retryable());
}

/// Throws fio::Error unless `status` is FIO_OK. Call it right after the C call.
inline void check(fio_status status, const char *what) {
    if (status != FIO_OK) throw error_for(status, what);
}

/// Runs `cleanup` (C calls that reset the thread's error detail), then throws unless `status` is
/// FIO_OK, with the detail captured before the cleanup.
template <typename F>
inline void check_then(fio_status status, const char *what, F &&cleanup) {
    if (status != FIO_OK) {
        Error e = error_for(status, what);
        cleanup();
        throw e;
    }
    cleanup();
}

namespace detail {
template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;
}  // namespace detail

/// A string the library allocated (freed with fio_string_free).
class String {
public:
    String() = default;
    explicit String(char *p) : p_(p) {}
    const char *c_str() const noexcept { return p_ ? p_.get() : ""; }
    std::string str() const { return c_str(); }

private:
    detail::Handle<char, fio_string_free> p_;
};

inline std::string take_string(fio_status st, char *p, const char *what) {
    String s(p);  // freed whatever happens next
    check(st, what);
    return s.str();
}

/// Builder of a client configuration (fio_config). Build it on one thread.
class Config {
public:
    Config() : h_(fio_config_new()) {
        if (!h_) throw std::bad_alloc();
    }
    Config &base_url(const std::string &url) { return set(fio_config_set_base_url(get(), url.c_str()), "fio_config_set_base_url"); }
    Config &client_id(const std::string &id) { return set(fio_config_set_client_id(get(), id.c_str()), "fio_config_set_client_id"); }
    Config &client_secret(const std::string &s) {
        return set(fio_config_set_client_secret(get(), s.c_str()), "fio_config_set_client_secret");
    }
    Config &client_version(const std::string &v) {
        return set(fio_config_set_client_version(get(), v.c_str()), "fio_config_set_client_version");
    }
    Config &url_pairing(bool on) { return set(fio_config_set_url_pairing(get(), on), "fio_config_set_url_pairing"); }
    Config &allow_http(bool on) { return set(fio_config_set_allow_http(get(), on), "fio_config_set_allow_http"); }
    Config &extra_ca_pem(const std::string &pem) {
        return set(fio_config_set_extra_ca_pem(get(), reinterpret_cast<const uint8_t *>(pem.data()), pem.size()),
                   "fio_config_set_extra_ca_pem");
    }
    fio_config *get() const noexcept { return h_.get(); }

private:
    Config &set(fio_status st, const char *what) {
        check(st, what);
        return *this;
    }
    detail::Handle<fio_config, fio_config_free> h_;
};

/// An access/refresh token pair and the access token's expiry (Unix seconds).
struct Tokens {
    std::string access_token, refresh_token;
    uint64_t expires_at = 0;
};

class Client;

/// A device-code pairing in progress: show user_code() and verification_uri() (and a QR code of
/// verification_uri_complete() when present), then wait(). cancel() works from any thread.
class Pairing {
public:
    std::string user_code() const { return fio_pairing_user_code(get()); }
    std::string verification_uri() const { return fio_pairing_verification_uri(get()); }
    std::string verification_uri_complete() const {
        const char *s = fio_pairing_verification_uri_complete(get());
        return s ? s : "";
    }
    uint32_t expires_in() const noexcept { return fio_pairing_expires_in(get()); }
    inline void wait(const Client &client) const;
    void cancel() const noexcept { fio_pairing_cancel(get()); }
    const fio_pairing *get() const noexcept { return h_.get(); }

private:
    friend class Client;
    explicit Pairing(fio_pairing *p) : h_(p) {}
    detail::Handle<fio_pairing, fio_pairing_free> h_;
};

/// A client (fio_client): one per device, safe to share between threads.
class Client {
public:
    using TokenFn = std::function<void(const Tokens &)>;

    /// `on_tokens` (optional) runs on whichever thread obtained new tokens (pairing, refresh): persist
    /// them there, before the library uses them. It must not call back into this client.
    explicit Client(Config &config, TokenFn on_tokens = {}) {
        if (on_tokens) {
            on_tokens_ = std::make_unique<TokenFn>(std::move(on_tokens));
            check(fio_config_set_token_callback(config.get(), &Client::token_trampoline, on_tokens_.get()),
                  "fio_config_set_token_callback");
        }
        fio_client *c = nullptr;
        fio_status st = fio_client_new(config.get(), &c);
        check_then(st, "fio_client_new", [&] {
            // the client copied the callback; the config may outlive us
            if (on_tokens_) fio_config_set_token_callback(config.get(), nullptr, nullptr);
        });
        h_.reset(c);
    }

    void set_tokens(const Tokens &t) const {
        check(fio_client_set_tokens(get(), t.access_token.c_str(), t.refresh_token.c_str(), t.expires_at),
              "fio_client_set_tokens");
    }
    Tokens tokens() const {
        char *access = nullptr, *refresh = nullptr;
        uint64_t exp = 0;
        fio_status st = fio_client_get_tokens(get(), &access, &refresh, &exp);
        String a(access), r(refresh);  // freed (and wiped by the library) whatever happens next
        check(st, "fio_client_get_tokens");
        return Tokens{a.str(), r.str(), exp};
    }
    Pairing start_pairing() const {
        fio_pairing *p = nullptr;
        check(fio_pairing_start(get(), &p), "fio_pairing_start");
        return Pairing(p);
    }
    /// The device's record (JSON text: project, name, status).
    std::string device_info() const {
        char *json = nullptr;
        fio_status st = fio_device_info(get(), &json);
        return take_string(st, json, "fio_device_info");
    }
    void heartbeat() const { check(fio_heartbeat(get()), "fio_heartbeat"); }
    /// Adds a comment to an asset; returns the comment's id. `timestamp` < 0: none.
    std::string comment(const std::string &asset_id, const std::string &text, double timestamp = -1) const {
        char *id = nullptr;
        fio_status st = fio_comment_create(get(), asset_id.c_str(), text.c_str(), timestamp, &id);
        return take_string(st, id, "fio_comment_create");
    }
    const fio_client *get() const noexcept { return h_.get(); }

private:
    static void token_trampoline(void *ud, const char *access, const char *refresh, uint64_t expires_at) noexcept {
        try {
            (*static_cast<TokenFn *>(ud))(Tokens{access, refresh, expires_at});
        } catch (...) {
            // must not unwind into the library; the caller's function should report its own failures
        }
    }
    // declaration order matters: h_ is destroyed first, so no callback runs on a destroyed function
    std::unique_ptr<TokenFn> on_tokens_;
    detail::Handle<fio_client, fio_client_free> h_;
};

inline void Pairing::wait(const Client &client) const { check(fio_pairing_wait(client.get(), get()), "fio_pairing_wait"); }

/// What to create: the asset's name (with extension) and MIME type, optionally channel and offset.
struct AssetSpec {
    std::string name;
    std::string filetype = "application/octet-stream";
    int64_t channel = -1;  // < 0: the server's default
    int64_t offset = -1;   // seconds since the media was created; < 0: none

    fio_asset_params params() const {
        fio_asset_params p;
        fio_asset_params_init(&p);
        p.name = name.c_str();
        p.filetype = filetype.c_str();
        if (channel >= 0) p.has_channel = true, p.channel = channel;
        if (offset >= 0) p.has_offset = true, p.offset = offset;
        return p;
    }
};

/// Returns false to cancel the upload. Runs on the engine's monitor thread.
using ProgressFn = std::function<bool(const fio_progress &)>;

/// Upload settings (fio_upload_options) plus the progress function they call.
class UploadOptions {
public:
    UploadOptions() : h_(fio_upload_options_new()) {
        if (!h_) throw std::bad_alloc();
    }
    UploadOptions &concurrency(uint32_t n) {
        check(fio_upload_options_set_concurrency(get(), n), "fio_upload_options_set_concurrency");
        return *this;
    }
    UploadOptions &buffer_budget(uint64_t bytes) {
        check(fio_upload_options_set_buffer_budget(get(), bytes), "fio_upload_options_set_buffer_budget");
        return *this;
    }
    UploadOptions &state_file(const std::string &path) {
        check(fio_upload_options_set_state_file(get(), path.c_str()), "fio_upload_options_set_state_file");
        return *this;
    }
    UploadOptions &watch_interval_ms(uint32_t ms) {
        check(fio_upload_options_set_watch_interval(get(), ms), "fio_upload_options_set_watch_interval");
        return *this;
    }
    UploadOptions &progress(ProgressFn fn, uint32_t interval_ms = 200) {
        progress_ = std::move(fn);
        interval_ms_ = interval_ms;
        return *this;
    }
    fio_upload_options *get() const noexcept { return h_.get(); }

private:
    friend class Upload;
    friend inline fio_progress upload_file(const Client &, const AssetSpec &, const std::string &, bool, UploadOptions &);
    detail::Handle<fio_upload_options, fio_upload_options_free> h_;
    ProgressFn progress_;
    uint32_t interval_ms_ = 200;
};

namespace detail {
// The progress function and the first exception it threw (rethrown on the caller's thread).
struct ProgressBox {
    ProgressFn fn;
    std::exception_ptr error;
    static int trampoline(void *ud, const fio_progress *p) noexcept {
        auto *box = static_cast<ProgressBox *>(ud);
        try {
            return box->fn(*p) ? 0 : 1;
        } catch (...) {
            if (!box->error) box->error = std::current_exception();
            return 1;  // cancel
        }
    }
    void install(UploadOptions &o, uint32_t interval_ms) {
        check(fio_upload_options_set_progress(o.get(), fn ? &ProgressBox::trampoline : nullptr, this, interval_ms),
              "fio_upload_options_set_progress");
    }
};
}  // namespace detail

/// A real-time upload while recording (fio_upload). Feed it with write() (bytes) or file_grew()
/// (a growing file), then finish(). cancel() and stats() work from any thread. The destructor
/// cancels an unfinished upload (its state file stays, for resume) and waits for its threads.
class Upload {
public:
    /// `file_path` empty: bytes come from write(); otherwise that file, which grows append-only.
    static Upload start(const Client &client, const AssetSpec &spec, const std::string &file_path, UploadOptions &opts) {
        Upload up;
        up.box_->fn = opts.progress_;
        up.box_->install(opts, opts.interval_ms_);
        fio_asset_params p = spec.params();
        fio_upload *u = nullptr;
        fio_status st = fio_upload_start(client.get(), &p, file_path.empty() ? nullptr : file_path.c_str(), opts.get(), &u);
        // the options were copied by the start: leave no pointer to our progress box in them
        check_then(st, "fio_upload_start", [&] { fio_upload_options_set_progress(opts.get(), nullptr, nullptr, 0); });
        up.h_.reset(u);
        return up;
    }
    /// Continues after a restart from `state_file` (see UploadOptions::state_file).
    static Upload resume(const Client &client, const std::string &state_file, UploadOptions &opts) {
        Upload up;
        up.box_->fn = opts.progress_;
        up.box_->install(opts, opts.interval_ms_);
        fio_upload *u = nullptr;
        fio_status st = fio_upload_resume(client.get(), state_file.c_str(), opts.get(), &u);
        check_then(st, "fio_upload_resume", [&] { fio_upload_options_set_progress(opts.get(), nullptr, nullptr, 0); });
        up.h_.reset(u);
        return up;
    }
    std::string asset_id() const { return fio_upload_asset_id(get()); }
    void write(const void *data, size_t len) const {
        check(fio_upload_write(get(), static_cast<const uint8_t *>(data), len), "fio_upload_write");
    }
    void file_grew(uint64_t new_size) const { check(fio_upload_file_grew(get(), new_size), "fio_upload_file_grew"); }
    /// Waits until the asset is complete; returns the final counters. Rethrows an exception thrown
    /// by the progress function (which cancelled the upload).
    fio_progress finish() const {
        fio_progress stats{};
        fio_status st = fio_upload_finish(get(), &stats);
        if (box_->error) std::rethrow_exception(box_->error);
        check(st, "fio_upload_finish");
        return stats;
    }
    void cancel() const noexcept { fio_upload_cancel(get()); }
    fio_progress stats() const {
        fio_progress s{};
        check(fio_upload_stats(get(), &s), "fio_upload_stats");
        return s;
    }
    const fio_upload *get() const noexcept { return h_.get(); }

private:
    Upload() : box_(std::make_unique<detail::ProgressBox>()) {}
    // box_ is declared first so it is destroyed last, after fio_upload_free has joined the threads
    std::unique_ptr<detail::ProgressBox> box_;
    detail::Handle<fio_upload, fio_upload_free> h_;
};

/// Uploads a complete file in one call (real-time or basic asset, parts in parallel).
inline fio_progress upload_file(const Client &client, const AssetSpec &spec, const std::string &path, bool realtime,
                                UploadOptions &opts) {
    detail::ProgressBox box;
    box.fn = opts.progress_;
    box.install(opts, opts.interval_ms_);
    fio_asset_params p = spec.params();
    p.realtime = realtime;
    fio_progress stats{};
    fio_status st = fio_upload_file(client.get(), &p, path.c_str(), opts.get(), &stats);
    if (box.error) {
        fio_upload_options_set_progress(opts.get(), nullptr, nullptr, 0);
        std::rethrow_exception(box.error);
    }
    // `box` dies when we return: leave no pointer to it in the options
    check_then(st, "fio_upload_file", [&] { fio_upload_options_set_progress(opts.get(), nullptr, nullptr, 0); });
    return stats;
}

}  // namespace fio

#endif  // FRAMEIO_C2C_HPP
