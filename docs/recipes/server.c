/* A minimal TCP server for the README's Dockerfile recipe: it answers every
 * connection on port 8080 with one line. `--self-test` binds a free
 * loopback port instead, connects to itself once, prints the reply and
 * exits (what the test suite runs inside the staged root). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] = "hello from a FROM scratch image\n";

int main(int argc, char **argv) {
    int self_test = argc > 1 && strcmp(argv[1], "--self-test") == 0;
    struct passwd *pw = getpwuid(getuid());
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(self_test ? 0 : 8080);
    addr.sin_addr.s_addr = htonl(self_test ? INADDR_LOOPBACK : INADDR_ANY);
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 16) != 0) {
        perror("server");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(s, (struct sockaddr *)&addr, &len);
    printf("listening as %s\n", pw ? pw->pw_name : "an unnamed user");
    fflush(stdout);
    if (self_test) {
        char buf[128];
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("server: connect");
            return 1;
        }
        int conn = accept(s, NULL, NULL);
        if (conn < 0 || write(conn, reply, sizeof reply - 1) < 0) {
            perror("server: accept");
            return 1;
        }
        close(conn);
        ssize_t n = read(c, buf, sizeof buf - 1);
        if (n <= 0) {
            return 1;
        }
        buf[n] = '\0';
        fputs(buf, stdout);
        return 0;
    }
    for (;;) {
        int conn = accept(s, NULL, NULL);
        if (conn < 0) {
            continue;
        }
        if (write(conn, reply, sizeof reply - 1) < 0) {
            perror("server: write");
        }
        close(conn);
    }
}
