/*
 * admin.h - the admin HTTP listener: GET /metrics and GET /healthz.
 *
 * A tiny HTTP/1.x server on a loop connection: one bounded request
 * (proto/http.h), one response, close. Bad requests get 400, unknown paths
 * 404, other methods 405 (with Allow), oversized requests 431/413.
 */
#ifndef RG_CORE_ADMIN_H
#define RG_CORE_ADMIN_H

#include <stddef.h>

struct buf;
struct conn_handler;
struct metrics;

struct admin;

/* healthy(arg, detail) appends a one-line status to detail and returns 1
 * when healthy (200) or 0 when not (503). NULL = always healthy. */
struct admin *admin_new(struct metrics *m,
    int (*healthy)(void *arg, struct buf *detail), void *arg);
void admin_free(struct admin *a);

/* The request-to-response step, without I/O (the handler's core, and what
 * tests drive). req[0..n) is everything the client has sent so far.
 * Returns 0 when more bytes are needed (out untouched), 1 when a complete
 * response (status line, headers with Content-Length and Connection: close,
 * body unless HEAD) was appended to out and the connection is to be closed
 * once it is sent, -1 when memory ran out (out may hold a partial
 * response: drop it and abort). */
int admin_respond(struct admin *a, const char *req, size_t n, struct buf *out);

/* A daemon's own paths: a request whose path is prefix or starts with
 * prefix + "/" goes to fn, on the admin's thread (worker 0's loop), with
 * the method and the whole target (path and query; neither
 * NUL-terminated). fn appends the body to body, sets *ctype_r (NULL:
 * text/plain) and returns the status (200, 400, 404, 405...), or -1 out
 * of memory. A 405 gets "Allow: GET, POST". One route per admin; set it
 * before the admin serves. */
typedef int admin_route_fn(void *arg, const char *method, size_t mlen,
    const char *target, size_t tlen, struct buf *body, const char **ctype_r);
void admin_set_route(struct admin *a, const char *prefix, admin_route_fn *fn,
    void *arg);

/* Handler for loop_listen(); pass the admin as the listener ctx. */
const struct conn_handler *admin_handler(void);

#endif
