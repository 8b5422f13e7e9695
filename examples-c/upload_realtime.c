/*
 * upload_realtime: upload a file while it is being recorded, with the low-level real-time calls.
 *
 *   ./upload_realtime TOKEN_FILE FILE [--done PATH] [--part-size BYTES] [--mime TYPE]
 *
 * Creates a real-time asset, then registers and PUTs a part each time PART_SIZE new bytes exist in FILE
 * (never guessing ahead: sizes are exact), streaming each part from the file with fio_put_part_fd.
 * Recording is over when PATH exists (--done), or at once without --done (a finished file); then the
 * remaining bytes go up as the final part with asset_filesize. An expired URL (FIO_ERR_URL_EXPIRED) is
 * registered again for a fresh one.
 */
#include <sys/stat.h>
#include <time.h>

#include "example_util.h"

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static uint64_t file_size(int fd) {
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* Register one part and PUT it from the file; one re-registration after an expired URL. */
static void send_part(fio_client *client, const char *asset_id, int fd, uint64_t offset, fio_part_spec spec,
                      uint64_t asset_filesize, const char *mime) {
    int attempt;
    for (attempt = 0; attempt < 2; attempt++) {
        fio_url_list *urls = NULL;
        fio_status st;
        CHECK(fio_register_parts(client, asset_id, &spec, 1, NULL, asset_filesize, &urls));
        st = fio_put_part_fd(client, fio_url_list_get(urls, 0), fd, offset, spec.size, mime, NULL, NULL);
        fio_url_list_free(urls);
        if (st == FIO_OK) {
            printf("  part %u: %llu bytes%s\n", spec.number, (unsigned long long)spec.size,
                   spec.is_final ? " (final)" : "");
            fflush(stdout);
            return;
        }
        if (st != FIO_ERR_URL_EXPIRED || attempt == 1) {
            print_error("fio_put_part_fd", st);
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    const char *done_path = NULL, *mime = "video/mp4", *path, *name;
    uint64_t part_size = 8u * 1024 * 1024, uploaded = 0;
    uint32_t number = 1;
    fio_client *client;
    fio_asset *asset = NULL;
    fio_asset_params params;
    struct stat sb;
    int fd, i;

    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKEN_FILE FILE [--done PATH] [--part-size BYTES] [--mime TYPE]\n", argv[0]);
        return 2;
    }
    for (i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--done") == 0) done_path = argv[i + 1];
        else if (strcmp(argv[i], "--part-size") == 0) part_size = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--mime") == 0) mime = argv[i + 1];
    }
    path = argv[2];
    name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    client = client_from_env(argv[1]);
    if (load_tokens(client, argv[1]) != 0) return 1;

    fio_asset_params_init(&params);
    params.name = name;
    params.filetype = mime;
    params.realtime = true;
    params.has_offset = true;
    params.offset = (fstat(fd, &sb) == 0 && time(NULL) > sb.st_mtime) ? (int64_t)(time(NULL) - sb.st_mtime) : 0;
    CHECK(fio_asset_create(client, &params, &asset));
    printf("real-time asset %s (%s)\n", fio_asset_id(asset), fio_asset_name(asset));
    fflush(stdout);

    for (;;) {
        int recording_done = done_path == NULL || access(done_path, F_OK) == 0;
        uint64_t size = file_size(fd);
        if (recording_done) {
            fio_part_spec spec;
            /* Whole parts first, then the rest as the final part. */
            while (size - uploaded > part_size) {
                fio_part_spec s;
                s.number = number++;
                s.size = part_size;
                s.is_final = false;
                send_part(client, fio_asset_id(asset), fd, uploaded, s, FIO_SIZE_NONE, mime);
                uploaded += part_size;
            }
            spec.number = number;
            spec.size = size - uploaded;
            spec.is_final = true;
            send_part(client, fio_asset_id(asset), fd, uploaded, spec, size, mime);
            uploaded = size;
            break;
        }
        if (size - uploaded >= part_size) {
            fio_part_spec spec;
            spec.number = number++;
            spec.size = part_size;
            spec.is_final = false;
            send_part(client, fio_asset_id(asset), fd, uploaded, spec, FIO_SIZE_NONE, mime);
            uploaded += part_size;
        } else {
            sleep_ms(100);
        }
    }
    printf("uploaded asset %s: %llu bytes in %u part%s\n", fio_asset_id(asset), (unsigned long long)uploaded, number,
           number == 1 ? "" : "s");
    fio_asset_free(asset);
    fio_client_free(client);
    close(fd);
    return 0;
}
