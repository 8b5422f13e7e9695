/*
 * upload_file: a basic (non-real-time) upload of a complete file with the low-level calls.
 *
 *   ./upload_file TOKEN_FILE FILE [MIME_TYPE]
 *
 * Creates the asset with its size, gets its upload URLs, and PUTs part i = bytes
 * [i*chunk, min((i+1)*chunk, size)) with chunk = ceil(size / number_of_urls), streamed from the file.
 */
#include <sys/stat.h>

#include "example_util.h"

static const char *mime_for(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot == NULL) return "application/octet-stream";
    if (strcmp(dot, ".mp4") == 0) return "video/mp4";
    if (strcmp(dot, ".mov") == 0) return "video/quicktime";
    if (strcmp(dot, ".wav") == 0) return "audio/wav";
    if (strcmp(dot, ".jpg") == 0) return "image/jpeg";
    return "application/octet-stream";
}

int main(int argc, char **argv) {
    fio_client *client;
    fio_asset *asset = NULL;
    fio_asset_params params;
    struct stat sb;
    const char *path, *name, *mime;
    uint64_t size, chunk;
    size_t n, i;
    int fd;

    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKEN_FILE FILE [MIME_TYPE]\n", argv[0]);
        return 2;
    }
    path = argv[2];
    name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    mime = argc > 3 ? argv[3] : mime_for(path);
    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        perror(path);
        return 1;
    }
    size = (uint64_t)sb.st_size;

    client = client_from_env(argv[1]);
    if (load_tokens(client, argv[1]) != 0) return 1;

    fio_asset_params_init(&params);
    params.name = name;
    params.filetype = mime;
    params.filesize = size;
    params.realtime = false;
    params.has_offset = true;
    params.offset = 0;
    CHECK(fio_asset_create(client, &params, &asset));

    n = fio_asset_upload_url_count(asset);
    chunk = n > 0 ? (size + n - 1) / n : 0;
    printf("asset %s: %llu bytes in %zu part%s\n", fio_asset_id(asset), (unsigned long long)size, n, n == 1 ? "" : "s");
    for (i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * chunk;
        uint64_t len = off < size ? (size - off < chunk ? size - off : chunk) : 0;
        CHECK(fio_put_part_fd(client, fio_asset_upload_url(asset, i), fd, off, len, mime, NULL, NULL));
        printf("  part %zu/%zu: %llu bytes\n", i + 1, n, (unsigned long long)len);
    }
    printf("uploaded asset %s\n", fio_asset_id(asset));
    fio_asset_free(asset);
    fio_client_free(client);
    close(fd);
    return 0;
}
