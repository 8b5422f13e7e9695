/*
 * pair: pair this device with Frame.io (device-code flow), then save the tokens.
 *
 *   ./pair [TOKEN_FILE]        (default fio-tokens.txt; environment as in example_util.h)
 *
 * Shows the six-digit code and the URL (and the prefilled URL for a QR code), waits until the user has
 * entered the code (Ctrl-C cancels: fio_pairing_cancel is async-signal-safe), and saves the token pair
 * from the token callback, atomically, before the library uses it.
 */
#include <signal.h>

#include "example_util.h"

static const fio_pairing *volatile g_pairing = NULL;

static void on_sigint(int sig) {
    (void)sig;
    if (g_pairing != NULL) fio_pairing_cancel(g_pairing);
}

int main(int argc, char **argv) {
    const char *token_file = argc > 1 ? argv[1] : "fio-tokens.txt";
    fio_client *client = client_from_env(token_file);
    fio_pairing *pairing = NULL;
    fio_status st;
    char *json = NULL;

    CHECK(fio_pairing_start(client, &pairing));
    printf("Pair this device: go to %s and enter the code %s\n", fio_pairing_verification_uri(pairing),
           fio_pairing_user_code(pairing));
    if (fio_pairing_verification_uri_complete(pairing) != NULL) {
        printf("(or open / scan: %s)\n", fio_pairing_verification_uri_complete(pairing));
    }
    printf("The code expires in %u s. Waiting... (Ctrl-C cancels)\n", fio_pairing_expires_in(pairing));
    fflush(stdout);

    g_pairing = pairing;
    signal(SIGINT, on_sigint);
    st = fio_pairing_wait(client, pairing);
    signal(SIGINT, SIG_DFL);
    g_pairing = NULL;
    fio_pairing_free(pairing);

    if (st != FIO_OK) {
        print_error("fio_pairing_wait", st);
        fio_client_free(client);
        return 1;
    }
    printf("Paired. Tokens saved to %s\n", token_file);
    if (fio_device_info(client, &json) == FIO_OK) {
        printf("Device: %.300s%s\n", json, strlen(json) > 300 ? " ..." : "");
        fio_string_free(json);
    }
    fio_client_free(client);
    return 0;
}
