/*
 * Footprint probe: the smallest useful C program on the library, linked with libframeio_c2c.a (static), then
 * stripped, to report what the library adds to a firmware image. It makes a client and PUTs one file to a
 * URL given on the command line (or only makes the client when no URL is given).
 *
 *   footprint_example [URL FILE]
 */
#include "frameio_c2c.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    fio_config *cfg = fio_config_new();
    fio_config_set_allow_http(cfg, true);
    fio_config_set_base_url(cfg, "https://api.frame.io");
    fio_config_set_client_id(cfg, "footprint");
    fio_config_set_client_secret(cfg, "footprint");
    fio_client *client = NULL;
    fio_status st = fio_client_new(cfg, &client);
    fio_config_free(cfg);
    if (st) { fprintf(stderr, "%s\n", fio_status_str(st)); return 1; }
    if (argc > 2) {
        int fd = open(argv[2], O_RDONLY);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) { perror(argv[2]); return 1; }
        st = fio_put_part_fd(client, argv[1], fd, 0, (uint64_t)sb.st_size, "video/quicktime", NULL, NULL);
        close(fd);
        printf("%s\n", fio_status_str(st));
    }
    fio_client_free(client);
    return st ? 1 : 0;
}
