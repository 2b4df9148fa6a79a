/* A test tool: sends one request to a node's admin socket and prints the reply.
 *
 *   admin_request ENDPOINT SIZE   a JSON request padded to SIZE bytes
 *
 * test_mesh_refusals.sh uses it to check that an oversized request is refused with a
 * clear error while the socket goes on answering. Exit 0 when a reply came within 10 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: admin_request ENDPOINT SIZE\n");
        return 2;
    }
    size_t size = strtoul(argv[2], NULL, 10);
    const char head[] = "{\"cmd\":\"peers\",\"pad\":\"";
    if (size < sizeof head + 2)
        size = sizeof head + 2;
    char *req = malloc(size);
    if (!req)
        return 1;
    memset(req, 'x', size);
    memcpy(req, head, sizeof head - 1);
    memcpy(req + size - 2, "\"}", 2);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int timeout = 10000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    char reply[4096];
    int n = -1;
    if (zmq_connect(s, argv[1]) == 0 && zmq_send(s, req, size, 0) == (int)size)
        n = zmq_recv(s, reply, sizeof reply - 1, 0);
    if (n >= 0) {
        reply[n < (int)sizeof reply - 1 ? n : (int)sizeof reply - 1] = 0;
        puts(reply);
    } else {
        fprintf(stderr, "admin_request: no reply from %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
    }
    free(req);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return n >= 0 ? 0 : 1;
}
