// record_upload: the C++ wrappers (frameio_c2c.hpp) end to end: pair once (tokens kept in a file,
// mode 0600), then upload a media file as a real-time asset while it "records", and comment on it.
//
//   ./record_upload TOKEN_FILE MEDIA_FILE [MIME_TYPE]
//
// Environment: FIO_CLIENT_ID, FIO_CLIENT_SECRET (required); FIO_BASE_URL, FIO_CLIENT_VERSION,
// FIO_ALLOW_HTTP=1 (the emulator only), FIO_CA_PEM (extra CA file).
//
// The "recording" is simulated: the program copies MEDIA_FILE into MEDIA_FILE.rec in 1 MiB steps,
// reporting each step with Upload::file_grew, the way a camera reports the bytes its muxer has
// flushed. Prints the asset id on the last line of stdout.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "frameio_c2c.hpp"

namespace {

std::string env(const char *name, const char *def = nullptr) {
    const char *v = std::getenv(name);
    if (v) return v;
    if (def) return def;
    throw std::runtime_error(std::string("set ") + name);
}

// Tokens are secrets: written atomically to a file only the owner can read.
void save_tokens(const std::string &path, const fio::Tokens &t) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp);
    std::string text = t.access_token + "\n" + t.refresh_token + "\n" + std::to_string(t.expires_at) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot save tokens to " + path);
}

bool load_tokens(const std::string &path, fio::Tokens &t) {
    std::ifstream in(path);
    return static_cast<bool>(in >> t.access_token >> t.refresh_token >> t.expires_at);
}

}  // namespace

int main(int argc, char **argv) try {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " TOKEN_FILE MEDIA_FILE [MIME_TYPE]\n";
        return 2;
    }
    const std::string token_file = argv[1], media = argv[2];
    const std::string mime = argc > 3 ? argv[3] : "video/mp4";
    std::cout << "frameio-c2c " << fio_version() << "\n";

    fio::Config cfg;
    if (env("FIO_ALLOW_HTTP", "0") == "1") cfg.allow_http(true);
    cfg.base_url(env("FIO_BASE_URL", "https://api.frame.io"))
        .client_id(env("FIO_CLIENT_ID"))
        .client_secret(env("FIO_CLIENT_SECRET"))
        .client_version(env("FIO_CLIENT_VERSION", "1.0.0"))
        .url_pairing(true);
    if (const char *ca = std::getenv("FIO_CA_PEM")) {
        std::ifstream in(ca);
        std::stringstream pem;
        pem << in.rdbuf();
        cfg.extra_ca_pem(pem.str());
    }
    // Every new token pair (pairing, refresh) is saved before the library uses it: refresh tokens
    // are single-use, so a lost pair means pairing again.
    fio::Client client(cfg, [&](const fio::Tokens &t) { save_tokens(token_file, t); });

    fio::Tokens saved;
    if (load_tokens(token_file, saved)) {
        client.set_tokens(saved);
    } else {
        fio::Pairing pairing = client.start_pairing();
        std::cout << "Pair: enter " << pairing.user_code() << " at " << pairing.verification_uri() << "\n";
        if (!pairing.verification_uri_complete().empty())
            std::cout << "  (QR code: " << pairing.verification_uri_complete() << ")\n";
        std::cout.flush();
        pairing.wait(client);
        std::cout << "Paired.\n";
    }
    std::cout << "Device: " << client.device_info().substr(0, 200) << "\n";

    // Simulated recording: MEDIA_FILE.rec grows in 1 MiB steps.
    std::ifstream src(media, std::ios::binary);
    if (!src) throw std::runtime_error("cannot read " + media);
    const std::string rec = media + ".rec";
    std::ofstream out(rec, std::ios::binary | std::ios::trunc);

    fio::UploadOptions opts;
    opts.concurrency(3).progress(
        [](const fio_progress &p) {
            std::fprintf(stderr, "\r%llu / %llu bytes, %u/%u parts%s", (unsigned long long)p.bytes_done,
                         (unsigned long long)p.bytes_recorded, p.parts_done, p.parts_total, p.complete ? "\n" : "");
            return true;  // false would cancel
        },
        250);
    std::string name = media.substr(media.find_last_of('/') + 1);
    fio::Upload upload = fio::Upload::start(client, fio::AssetSpec{name, mime, -1, 0}, rec, opts);

    std::vector<char> buf(1 << 20);
    uint64_t size = 0;
    while (src.read(buf.data(), buf.size()), src.gcount() > 0) {
        out.write(buf.data(), src.gcount());
        out.flush();  // the bytes must be in the file before the library is told about them
        size += static_cast<uint64_t>(src.gcount());
        upload.file_grew(size);
    }
    out.close();
    fio_progress done = upload.finish();  // final part, then wait for every part
    std::cout << "Uploaded " << done.bytes_done << " bytes in " << done.parts_done << " parts, "
              << done.retries << " retries\n";

    std::string comment_id = client.comment(upload.asset_id(), "uploaded by record_upload (C++)");
    std::cout << "Comment " << comment_id << "\n";
    std::remove(rec.c_str());
    std::cout << upload.asset_id() << "\n";
    return 0;
} catch (const fio::Error &e) {
    std::cerr << "error: " << e.what();
    if (e.http_status()) std::cerr << " [HTTP " << e.http_status() << "]";
    std::cerr << "\n";
    return 1;
} catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
}
